"""A Django 3.2 project on MySQL/MariaDB (mysqlclient), naming its database
the two ways projects do: DATABASE_URL in the environment (Divio, Heroku;
read here as dj-database-url reads a mysql:// URL), else DATABASES written
out in local_settings.py (Mezzanine's template and many others). SITE_ID is
hard-coded, ALLOWED_HOSTS holds localhost only."""
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "siteplex-test-fixture-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost"]
SITE_ID = 1
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.sites",
    "siteapp",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "siteapp.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

DATABASES = {}
if os.environ.get("DATABASE_URL"):
    url = urlsplit(os.environ["DATABASE_URL"])
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.mysql",
        "NAME": unquote(url.path[1:]),
        "USER": unquote(url.username or ""),
        "PASSWORD": unquote(url.password or ""),
        "HOST": url.hostname or "",
        "PORT": str(url.port or ""),
        "OPTIONS": {"charset": "utf8mb4"},
    }

try:
    from .local_settings import *  # noqa: F401,F403
except ImportError:
    pass
