"""SITE_ID as django-multisite writes it: a threading.local that acts like
an int, with a default given to the constructor, set() and reset()."""
from threading import local


class SiteID(local):
    def __init__(self, default=None):
        if default is not None and not isinstance(default, int):
            raise ValueError("%r is not a valid default." % default)
        self.default = default
        self.reset()

    def __int__(self):
        if self.site_id is None:
            return self.get_default()
        return self.site_id

    def __str__(self):
        return str(self.__int__())

    def __repr__(self):
        return repr(self.__int__())

    def __eq__(self, other):
        if isinstance(other, int):
            return self.__int__() == other
        if isinstance(other, SiteID):
            return self.__int__() == other.__int__()
        return False

    def __hash__(self):
        return self.__int__()

    def set(self, value):
        self.site_id = getattr(value, "pk", value)

    def reset(self):
        self.site_id = None

    def get_default(self):
        if self.default is None:
            raise ValueError("SITE_ID has not been set.")
        return self.default
