"""Shaped like a django-multisite project: SITE_ID is a SiteID and
ALLOWED_HOSTS is multisite's lazy list of the aliases, built from the
database the first time it is iterated (the `multisite` package here is a
stand-in; see ../README.md)."""
from pathlib import Path

from multisite import SiteID
from multisite.hosts import ALLOWED_HOSTS  # noqa: F401 (a setting)

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "siteplex-test-fixture-not-secret"
DEBUG = False
SITE_ID = SiteID(default=1)
SILENCED_SYSTEM_CHECKS = ["sites.E101"]
MULTISITE_EXTRA_HOSTS = ["extra.example.net"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sites",
    "multisite",
    "siteapp",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware", "msproj.middleware.ContentDigest"]
ROOT_URLCONF = "siteapp.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(BASE_DIR / "multisite.db"),
    }
}
