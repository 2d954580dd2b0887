"""Local development and the demo: plain HTTP on 127.0.0.1 and an insecure default key.

DEBUG stays off unless the environment says DEBUG=1 (never on a shared machine: its pages show settings).
Static files are served from the apps by WhiteNoise, so no collectstatic is needed.
"""

from config.settings.base import *  # noqa: F403

WHITENOISE_USE_FINDERS = True
