"""Settings of the siteplex Django multisite test fixture.

SITE_ID comes from the environment as an int (siteplex sets it per process);
the database is db.sqlite3 next to manage.py.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "siteplex-test-fixture-not-secret"
DEBUG = os.environ.get("FIXTURE_DEBUG", "") == "1"
ALLOWED_HOSTS = ["*"]

SITE_ID = int(os.environ.get("SITE_ID", "1"))

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sites",
]

MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "fixtureproj.urls"
WSGI_APPLICATION = "fixtureproj.wsgi.application"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("FIXTURE_DB", str(BASE_DIR / "db.sqlite3")),
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
TIME_ZONE = "UTC"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
