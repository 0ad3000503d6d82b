#!/usr/bin/env python3
"""A tiny Django 3.2 project for siteplex's tests: `manage.py migrate`
creates django_site, multisite_alias and django_multisite_plus_site with
Django's own schema editor and fills them with a few sites."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djangoproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
