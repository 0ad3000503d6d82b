"""Shaped like Mezzanine's project template: SITE_ID hard-coded, the
database and ALLOWED_HOSTS in local_settings.py."""
SECRET_KEY = "siteplex-test-fixture-not-secret"
DEBUG = False
SITE_ID = 1
ALLOWED_HOSTS = []
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sites",
    "siteapp",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "siteapp.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
# siteapp's sites (as Mezzanine's createdb names the first one).
FIXTURE_SITES = [(1, "127.0.0.1:8000", "Default"), (2, "beta.example.com", "Beta"), (3, "gamma.example.org", "Gamma")]

try:
    from .local_settings import *  # noqa: F401,F403
except ImportError as e:
    if "local_settings" not in str(e):
        raise e
