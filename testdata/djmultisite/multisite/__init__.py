"""A stand-in for django-multisite (not packaged for Debian): the parts a
project's settings import — SiteID and the lazy ALLOWED_HOSTS — and its
Alias model (table multisite_alias), written for siteplex's tests."""
from .threadlocals import SiteID  # noqa: F401
