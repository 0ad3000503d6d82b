#!/usr/bin/env python3
"""A django-pgschemas 0.12 project in the shape of its sandbox, for
siteplex's tests: static tenants www and blog in settings, dynamic tenants
in shared_public_tenant / shared_public_domain."""
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pgsproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
