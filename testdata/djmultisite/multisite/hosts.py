"""ALLOWED_HOSTS as django-multisite builds it: a lazy object that, the
first time it is used, makes an iterable of MULTISITE_EXTRA_HOSTS and every
multisite_alias domain. Making it imports the Alias model, so using it
while the settings are imported raises AppRegistryNotReady, as the real
one does."""
from django.utils.functional import SimpleLazyObject, empty


class LazyHosts(SimpleLazyObject):
    def __iter__(self):
        if self._wrapped is empty:
            self._setup()
        return iter(self._wrapped)


class Hosts:
    def __init__(self):
        from django.conf import settings

        from .models import Alias

        self.extra = list(getattr(settings, "MULTISITE_EXTRA_HOSTS", []))
        self.aliases = Alias.objects

    def __iter__(self):
        for h in self.extra:
            yield h
        for (domain,) in self.aliases.values_list("domain"):
            yield domain


ALLOWED_HOSTS = LazyHosts(Hosts)
