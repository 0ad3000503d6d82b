from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
SECRET_KEY = "siteplex-test-fixture-not-secret"
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
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "var" / "site.sqlite3",
    }
}
