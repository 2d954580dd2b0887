"""ASGI entry point: production settings unless told otherwise; never with DEBUG on (see wsgi.py)."""

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
os.environ.setdefault("RECO_PROCESS", "web")
application = get_asgi_application()

from config.settings.guards import refuse_debug  # noqa: E402 - needs the settings loaded

if any(
    server in sys.modules for server in ("gunicorn", "uvicorn", "daphne", "hypercorn")
):  # runserver may debug; a served site never
    refuse_debug("the web server")
