"""Settings of the tiny Django project siteplex's domains and doctor tests
migrate to get a real Django-made SQLite database (django_site and friends).
The database file is $DOMAINSPROJ_DB, else db.sqlite3 next to manage.py.
django-multisite(-plus) is not installed: the tests add its tables with the
exact DDL Django 3.2 generates for them."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "siteplex-domainsproj-not-secret"
DEBUG = True
ALLOWED_HOSTS = ["*"]
SITE_ID = 1
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.sites"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DOMAINSPROJ_DB", str(BASE_DIR / "db.sqlite3")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
