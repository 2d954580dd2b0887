"""Checks run by the long-lived entry points (web server, Celery worker) once settings are loaded."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def refuse_debug(process: str) -> None:
    if settings.DEBUG:
        raise ImproperlyConfigured(
            f"DEBUG is on in {process}: its error pages would show settings and it keeps every query in memory. "
            "Unset DEBUG (the demo and development use `manage.py runserver`)."
        )
