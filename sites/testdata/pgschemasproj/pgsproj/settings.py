"""Settings of the django-pgschemas test project (python3-django-pgschemas
0.12), after the package's sandbox. PostgreSQL from PGDATABASE, PGHOST,
PGPORT, PGUSER."""
import os

SECRET_KEY = "siteplex-pgschemas-test-only"
DEBUG = True
ALLOWED_HOSTS = [".localhost", ".example"]

TENANT_APPS = ["django.contrib.auth", "django.contrib.sessions"]
TENANTS = {
    "public": {"APPS": ["django.contrib.contenttypes", "django_pgschemas", "shared_public"]},
    "www": {
        "APPS": TENANT_APPS,
        "URLCONF": "pgsproj.urls",
        "DOMAINS": ["localhost"],
        "FALLBACK_DOMAINS": ["everyone.localhost"],
    },
    "blog": {"APPS": TENANT_APPS, "URLCONF": "pgsproj.urls", "DOMAINS": ["blog.localhost"]},
    "default": {
        "TENANT_MODEL": "shared_public.Tenant",
        "DOMAIN_MODEL": "shared_public.Domain",
        "APPS": TENANT_APPS,
        "URLCONF": "pgsproj.urls",
    },
}
INSTALLED_APPS = ["django_pgschemas", "shared_public", "django.contrib.contenttypes"] + TENANT_APPS

DATABASES = {
    "default": {
        "ENGINE": "django_pgschemas.postgresql_backend",
        "NAME": os.environ.get("PGDATABASE", "pgschemas"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
    }
}
DATABASE_ROUTERS = ("django_pgschemas.routers.SyncRouter",)
MIDDLEWARE = ["django_pgschemas.middleware.TenantMiddleware", "django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "pgsproj.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
