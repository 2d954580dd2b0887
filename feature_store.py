"""The design document's `feature_store` module (docs/design-api.md): its names, from Reco's packages.

Run from the repository root; outside Django (a plain `python`) it sets Django up with DJANGO_SETTINGS_MODULE
(default config.settings.dev, the embedded defaults `make demo` uses).
"""

import os

import django
from django.apps import apps

if not apps.ready:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    django.setup()

from features.design_api import *  # noqa: F403
from features.design_api import __all__  # noqa: F401
