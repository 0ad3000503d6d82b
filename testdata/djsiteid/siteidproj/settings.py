"""SITE_ID is an object, as django-multisite's README writes it."""
from pathlib import Path

from .threadlocals import SiteID

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "siteplex-test-fixture-not-secret"
DEBUG = True
ALLOWED_HOSTS = []
SITE_ID = SiteID(default=1)
SILENCED_SYSTEM_CHECKS = ["sites.E101"]
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sites",
    "siteapp",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "siteapp.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(BASE_DIR / "sites.db"),
    }
}
