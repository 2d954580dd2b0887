"""WSGI entry point (`gunicorn -c config/gunicorn.py config.wsgi`): production settings unless told otherwise.

The demo and local runs choose `config.settings.dev` explicitly; whatever is chosen, a web process refuses
to start with DEBUG on (its error pages would print settings).
"""

import os
import sys

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
os.environ.setdefault("RECO_PROCESS", "web")
application = get_wsgi_application()

from config.settings.guards import refuse_debug  # noqa: E402 - needs the settings loaded

if any(server in sys.modules for server in ("gunicorn", "uwsgi")):  # runserver may debug; a served site never
    refuse_debug("the web server")
