#!/usr/bin/env python
"""The design's A/B entry point: `python ab_test.py --control baseline --treatment new_ranking_model --users 10000`
is `python manage.py ab_test` with the same arguments (see its --help)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    from django.core.management import execute_from_command_line

    execute_from_command_line([sys.argv[0], "ab_test", *sys.argv[1:]])


if __name__ == "__main__":
    main()
