# siteplex's overlay runtime: written by siteplex into .siteplex/overlay/
# (do not edit: it is rewritten). See docs/django.md in siteplex for what it
# changes and why. The overlay settings module (siteplex_overlay.py) imports
# the project's settings, then calls configure(globals()).
#
# Per-process values come from the environment:
#   SITEPLEX_OVERLAY        per-site | single | probe (probe: change nothing,
#                           only answer the identity probe)
#   SITEPLEX_SITE_ID        per-site: this process's django_site id;
#                           single: the site of requests without the header
#   SITEPLEX_ALLOWED_HOSTS  names routed to this process, comma-separated,
#   SITEPLEX_CANONICAL_HOSTS  or both in the JSON file SITEPLEX_HOSTS_FILE
#   SITEPLEX_SECRET         the engine's secret: only requests carrying it
#                           may choose the site or reach the probe
import hmac
import json
import os
import threading

PROBE_PATH = "/__siteplex__/identity/"
SECRET_META = "HTTP_X_SITEPLEX_SECRET"
SITE_META = "HTTP_X_SITEPLEX_SITE"
FIRST = "siteplex_runtime.SiteMiddleware"
LAST = "siteplex_runtime.ProbeMiddleware"
IMPLICIT_DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


def _env_int(environ, name):
    v = (environ.get(name) or "").strip()
    try:
        return int(v) if v else None
    except ValueError:
        return None


def _hosts(environ):
    allowed, canonical = [], []
    path = environ.get("SITEPLEX_HOSTS_FILE")
    if path:
        with open(path) as f:
            data = json.load(f)
        allowed = data.get("allowed_hosts") or []
        canonical = data.get("canonical_hosts") or []
    else:
        allowed = [h for h in (environ.get("SITEPLEX_ALLOWED_HOSTS") or "").split(",") if h]
        canonical = [h for h in (environ.get("SITEPLEX_CANONICAL_HOSTS") or "").split(",") if h]
    out = []
    for h in list(allowed) + list(canonical):
        h = _strip_port(h.strip().lower())
        if h and h not in out:
            out.append(h)
    return out


def _strip_port(h):
    if h.startswith("["):
        end = h.find("]")
        return h[: end + 1] if end >= 0 else h
    if h.count(":") == 1:
        return h.split(":")[0]
    return h


class RequestSiteID(threading.local):
    """settings.SITE_ID in single mode: an int-like value per request, in
    the manner of django-multisite's SiteID. SiteMiddleware sets it from
    the engine's header; without one it is the default."""

    def __init__(self, default=None):
        self.default = default
        self.site_id = None

    def set(self, value):
        pk = getattr(value, "pk", value)
        self.site_id = None if pk is None else int(pk)

    def reset(self):
        self.site_id = None

    def get_default(self):
        if self.default is None:
            raise ValueError("SITE_ID has not been set.")
        return self.default

    def override(self, value):
        import contextlib

        @contextlib.contextmanager
        def cm():
            old = self.site_id
            self.set(value)
            try:
                yield self
            finally:
                self.site_id = old

        return cm()

    def __int__(self):
        return self.site_id if self.site_id is not None else self.get_default()

    __index__ = __int__

    def __bool__(self):
        return self.site_id is not None or self.default is not None

    def __str__(self):
        return str(self.__int__())

    def __repr__(self):
        try:
            return repr(self.__int__())
        except ValueError:
            return "RequestSiteID(unset)"

    def __hash__(self):
        return hash(self.__int__())

    def _other(self, other):
        if isinstance(other, RequestSiteID) or hasattr(other, "__index__"):
            try:
                return int(other)
            except (TypeError, ValueError):
                return None
        return None

    def __eq__(self, other):
        o = self._other(other)
        return o is not None and self.__int__() == o

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        return self.__int__() < int(other)

    def __le__(self, other):
        return self.__int__() <= int(other)

    def __gt__(self, other):
        return self.__int__() > int(other)

    def __ge__(self, other):
        return self.__int__() >= int(other)


_MISSING = object()


def _kind(value):
    if value is _MISSING:
        return "missing"
    if value is None:
        return "none"
    # Types, not isinstance(): that would evaluate a LazyObject.
    t = type(value)
    if issubclass(t, bool):
        return "other"
    if t is int:
        return "int"
    if issubclass(t, str):
        return "other"
    return "object"


def _siteid_like(obj, site_id):
    """A new SITE_ID object of the project's class with default=site_id.
    The default must be given to the constructor: a threading.local runs
    __init__ again in every thread with the arguments it was made with."""
    for cls in type(obj).__mro__:
        if cls is object or cls is threading.local:
            break
        try:
            new = cls(default=site_id)
        except Exception:
            continue
        try:
            if int(new) == site_id:
                return new
        except Exception:
            continue
    return RequestSiteID(default=site_id)


def _sites_installed(ns):
    return any(str(a).startswith("django.contrib.sites") for a in ns.get("INSTALLED_APPS", ()) or ())


def _mezzanine_installed(ns):
    return any(str(a).startswith("mezzanine.") for a in ns.get("INSTALLED_APPS", ()) or ())


class _ExtendedHosts(object):
    """ALLOWED_HOSTS that is not a list or tuple (Mezzanine's
    SitesAllowedHosts, django-multisite's lazy list of its aliases, any
    LazyObject): siteplex's names first, then the project's, which are
    read only when iterated, as late as the project's own would be (these
    objects read the database, and using one while the settings import
    raises AppRegistryNotReady). A name siteplex routes matches before
    the project's are read. Under DEBUG, an empty project list keeps
    Django's implicit local names."""

    def __init__(self, extra, orig, debug=False):
        self.extra, self.orig, self.debug = list(extra), orig, debug

    def __iter__(self):
        for h in self.extra:
            yield h
        n = 0
        for h in self.orig:
            n += 1
            yield h
        if n == 0 and self.debug:
            for h in IMPLICIT_DEBUG_HOSTS:
                yield h

    def __bool__(self):
        return True

    def _list(self):
        # list(iter(...)): list(self) would ask __len__ for a size hint.
        return list(iter(self))

    def __len__(self):
        return len(self._list())

    def __getitem__(self, i):
        return self._list()[i]

    def __add__(self, other):
        return self._list() + list(other)

    def __radd__(self, other):
        return list(other) + self._list()

    def __repr__(self):
        # The project's object is not evaluated: repr of a LazyObject
        # that is not set up names its set-up function.
        return "siteplex(%r + %r)" % (self.extra, self.orig)


def _plain_list(value):
    """Whether value is a list or tuple, told from its type alone:
    isinstance() would ask a LazyObject's __class__, which evaluates it."""
    return issubclass(type(value), (list, tuple))


def _extend_allowed_hosts(ns, names):
    if not names:
        return
    orig = ns.get("ALLOWED_HOSTS", [])
    if _plain_list(orig):
        hosts = list(orig)
        if "*" in hosts:
            return
        if not hosts and ns.get("DEBUG"):
            # Django admits these only while ALLOWED_HOSTS is empty.
            hosts = list(IMPLICIT_DEBUG_HOSTS)
        for h in names:
            if h not in hosts:
                hosts.append(h)
        ns["ALLOWED_HOSTS"] = hosts
    else:
        ns["ALLOWED_HOSTS"] = _ExtendedHosts(names, orig, bool(ns.get("DEBUG")))


_STATE = {}


def configure(ns, environ=None):
    """Makes the settings in ns (the overlay module's globals, holding the
    project's settings) those of this process's site."""
    environ = os.environ if environ is None else environ
    mode = environ.get("SITEPLEX_OVERLAY", "probe")
    site_id = _env_int(environ, "SITEPLEX_SITE_ID")
    original = ns.get("SITE_ID", _MISSING)
    kind = _kind(original)
    # The project's own values, for reconfigure: a forked process becomes
    # another site from these, not from what this process made of them.
    _STATE.update(mode=mode, secret=environ.get("SITEPLEX_SECRET", ""), site_id=site_id, kind=kind,
                  project_settings=environ.get("SITEPLEX_PROJECT_SETTINGS", ""),
                  project={"SITE_ID": original, "ALLOWED_HOSTS": ns.get("ALLOWED_HOSTS", _MISSING)})
    mw = ns.get("MIDDLEWARE")
    if mw is not None:
        ns["MIDDLEWARE"] = [FIRST] + [m for m in mw if m not in (FIRST, LAST)] + [LAST]
    ns["SITEPLEX_OVERLAY"] = {"mode": mode, "site_id": site_id, "site_id_kind": kind,
                              "project_settings": _STATE["project_settings"]}
    if mode not in ("per-site", "single"):
        return
    if mode == "per-site":
        _per_site(ns, original, kind, site_id)
    else:
        touch_site_id = kind != "missing" or _sites_installed(ns)
        if kind == "object" and hasattr(original, "set"):
            if site_id is not None:
                ns["SITE_ID"] = _siteid_like(original, site_id)
        elif touch_site_id and kind in ("int", "missing", "none", "object"):
            default = site_id
            if default is None and kind == "int":
                default = original
            elif default is None and kind == "object":
                d = getattr(original, "default", None)
                default = d if type(d) is int else None
            ns["SITE_ID"] = RequestSiteID(default=default)
        if not issubclass(type(ns.get("SITE_ID")), int):
            checks = list(ns.get("SILENCED_SYSTEM_CHECKS", []) or [])
            if "sites.E101" not in checks:
                checks.append("sites.E101")
            ns["SILENCED_SYSTEM_CHECKS"] = checks
        if _mezzanine_installed(ns):
            # MEZZANINE_SITE_ID is one value per process; without it
            # Mezzanine falls back to SITE_ID, which follows the request.
            os.environ.pop("MEZZANINE_SITE_ID", None)
    _extend_allowed_hosts(ns, _hosts(environ))
    if ns.get("SECURE_PROXY_SSL_HEADER") is None:
        ns["SECURE_PROXY_SSL_HEADER"] = ("HTTP_X_FORWARDED_PROTO", "https")


def _per_site(ns, original, kind, site_id):
    """Per-site mode: SITE_ID (and Mezzanine's variable) of the process's
    site, in ns holding the project's own SITE_ID (original, of kind)."""
    if site_id is None:
        return
    touch_site_id = kind != "missing" or _sites_installed(ns)
    if kind == "object":
        ns["SITE_ID"] = _siteid_like(original, site_id)
    elif touch_site_id and kind in ("int", "missing", "none"):
        ns["SITE_ID"] = site_id
    if _mezzanine_installed(ns):
        os.environ["MEZZANINE_SITE_ID"] = str(site_id)


def reconfigure(site_id=None, allowed_hosts=None, environ=None):
    """Makes an already set-up per-site process serve another site: the
    settings become exactly what configure makes of the project's own
    settings for that site, on the live settings, and the sites cache is
    cleared. siteplex's preload calls it in each process it forks from a
    warm parent, after the site's environment is in os.environ.

    site_id None takes SITEPLEX_SITE_ID from the environment, and
    allowed_hosts None the names configure reads from it, so the two never
    disagree. Outside per-site mode (single, probe, no configure) it
    changes nothing, as configure does not."""
    from django.conf import settings

    environ = os.environ if environ is None else environ
    if site_id is None:
        site_id = _env_int(environ, "SITEPLEX_SITE_ID")
    if allowed_hosts is None:
        names = _hosts(environ)
    else:
        names = [n for n in (_strip_port(h.strip().lower()) for h in allowed_hosts) if n]
    if _STATE.get("mode") != "per-site":
        return
    _STATE["site_id"] = site_id
    project = _STATE.get("project") or {}
    original = project.get("SITE_ID", _MISSING)
    ns = {"INSTALLED_APPS": settings.INSTALLED_APPS, "DEBUG": settings.DEBUG}
    if original is not _MISSING:
        ns["SITE_ID"] = original
    hosts = project.get("ALLOWED_HOSTS", _MISSING)
    if hosts is not _MISSING:
        ns["ALLOWED_HOSTS"] = hosts
    _per_site(ns, original, _kind(original), site_id)
    _extend_allowed_hosts(ns, names)
    if "SITE_ID" in ns:
        settings.SITE_ID = ns["SITE_ID"]
    elif hasattr(settings, "SITE_ID"):
        del settings.SITE_ID
    settings.ALLOWED_HOSTS = ns.get("ALLOWED_HOSTS", [])
    try:
        from django.contrib.sites.models import SITE_CACHE

        SITE_CACHE.clear()
    except Exception:
        pass


def _secret_ok(request):
    secret = _STATE.get("secret") or ""
    got = request.META.get(SECRET_META, "")
    if not secret or not got:
        return False
    return hmac.compare_digest(got.encode("utf-8", "replace"), secret.encode("utf-8", "replace"))


class _IntKeyDict(dict):
    """django.contrib.sites' SITE_CACHE keyed by int: a per-request SITE_ID
    object would otherwise be stored as its own key."""

    def _k(self, k):
        try:
            return int(k)
        except (TypeError, ValueError):
            return k

    def __getitem__(self, k):
        return dict.__getitem__(self, self._k(k))

    def __setitem__(self, k, v):
        dict.__setitem__(self, self._k(k), v)

    def __contains__(self, k):
        return dict.__contains__(self, self._k(k))

    def pop(self, k, *default):
        return dict.pop(self, self._k(k), *default)

    def get(self, k, default=None):
        return dict.get(self, self._k(k), default)


class SiteMiddleware(object):
    """First in MIDDLEWARE. In single mode, sets SITE_ID for the request
    from the engine's header (only with the engine's secret). Answers the
    identity probe when no other middleware let it reach ProbeMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response
        if _STATE.get("mode") == "single":
            try:
                import django.contrib.sites.models as m

                if type(m.SITE_CACHE) is dict:
                    m.SITE_CACHE = _IntKeyDict(m.SITE_CACHE)
            except Exception:
                pass

    def __call__(self, request):
        ok = _secret_ok(request)
        sid = _request_site_id() if _STATE.get("mode") == "single" else None
        if sid is not None:
            # Nothing of an earlier request on this thread stays: a
            # request without the secret gets the default.
            sid.reset()
            raw = request.META.get(SITE_META, "") if ok else ""
            if raw:
                try:
                    sid.set(int(raw))
                except (ValueError, TypeError):
                    sid.reset()
        try:
            if ok and request.path_info == PROBE_PATH:
                request._siteplex_probe = True
                response = self.get_response(request)
                if not getattr(response, "_siteplex_probe", False):
                    response = probe_response(request, reached=False, status=response.status_code)
                # Streamed only here, outside every other middleware (one
                # that reads response.content would fail on a stream).
                response = _streamed_probe(request, response)
            else:
                response = self.get_response(request)
            if sid is not None:
                _hold_while_streaming(response, sid)
            return response
        finally:
            if sid is not None:
                sid.reset()


def _request_site_id():
    """settings.SITE_ID when it is a per-request value (set() and
    reset()), else None."""
    try:
        from django.conf import settings

        value = settings.SITE_ID
    except Exception:
        return None
    return value if hasattr(value, "set") and hasattr(value, "reset") else None


def _hold_while_streaming(response, sid):
    """A streaming answer's body is produced after the middleware returned
    (the WSGI server iterates it): each step of it runs with SITE_ID set
    to the request's site again, and the thread's own value back after it,
    so the site neither changes under the body nor leaks to another
    request. A file (FileResponse) reads no setting and is left alone, as
    is an async iterator (Django 4.2+), which runs on the event loop's
    thread; see docs/django.md, "Single mode"."""
    if not getattr(response, "streaming", False) or getattr(response, "is_async", False):
        return
    if getattr(response, "file_to_stream", None) is not None:
        return
    value = getattr(sid, "site_id", None)
    if value is None:
        return
    response.streaming_content = _with_site(sid, value, response.streaming_content)


def _with_site(sid, value, content):
    it = iter(content)
    while True:
        old = getattr(sid, "site_id", None)
        sid.set(value)
        try:
            chunk = next(it)
        except StopIteration:
            return
        finally:
            if old is None:
                sid.reset()
            else:
                sid.set(old)
        yield chunk


class ProbeMiddleware(object):
    """Last in MIDDLEWARE: every other middleware (tenants, multisite,
    Mezzanine's current request) has run, so the probe answers with what a
    view would see."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if getattr(request, "_siteplex_probe", False):
            return probe_response(request, reached=True, status=None)
        return self.get_response(request)


def _installed(name):
    from django.apps import apps

    return apps.is_installed(name)


def identity(request):
    """What the frameworks installed resolve for request."""
    from django.conf import settings

    out = {"errors": {}}
    value = getattr(settings, "SITE_ID", _MISSING)
    sid = {"kind": _kind(value)}
    if sid["kind"] in ("int", "object"):
        try:
            sid["value"] = int(value)
        except Exception as exc:
            out["errors"]["site_id"] = "%s: %s" % (type(exc).__name__, exc)
    if sid["kind"] == "object":
        sid["class"] = type(value).__module__ + "." + type(value).__qualname__
    out["site_id_setting"] = sid
    try:
        out["host"] = request.get_host()
    except Exception as exc:
        out["host"] = request.META.get("HTTP_HOST", "")
        out["host_error"] = "%s: %s" % (type(exc).__name__, exc)
    _current_site(request, out)
    if _installed("multisite"):
        try:
            out["multisite"] = {"site_id": int(settings.SITE_ID)}
        except Exception as exc:
            out["errors"]["multisite"] = "%s: %s" % (type(exc).__name__, exc)
    if _installed("mezzanine.core"):
        try:
            from mezzanine.core import request as mreq
            from mezzanine.utils.sites import current_site_id

            local = getattr(mreq, "_thread_local", None)
            had = getattr(local, "request", None) if local is not None else None
            if local is not None and had is None:
                local.request = request
            try:
                out["mezzanine"] = {"site_id": int(current_site_id())}
            finally:
                if local is not None and had is None:
                    local.request = None
        except Exception as exc:
            out["errors"]["mezzanine"] = "%s: %s" % (type(exc).__name__, exc)
    for app, mod in (("wagtail", "wagtail.models"), ("wagtail.core", "wagtail.core.models")):
        if _installed(app):
            try:
                import importlib

                Site = importlib.import_module(mod).Site
                w = Site.find_for_request(request)
                out["wagtail"] = None if w is None else {"id": w.pk, "hostname": w.hostname, "port": w.port,
                                                         "site_name": getattr(w, "site_name", "")}
            except Exception as exc:
                out["errors"]["wagtail"] = "%s: %s" % (type(exc).__name__, exc)
            break
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        out["tenant"] = {"schema_name": getattr(tenant, "schema_name", ""), "id": getattr(tenant, "pk", None)}
    out["env"] = {"SITE_ID": os.environ.get("SITE_ID"), "MEZZANINE_SITE_ID": os.environ.get("MEZZANINE_SITE_ID")}
    return out


def _current_site(request, out):
    """out["sites"]: get_current_site(request) when django.contrib.sites
    is installed (or why not, in out["errors"])."""
    if not _installed("django.contrib.sites"):
        return
    try:
        from django.contrib.sites.shortcuts import get_current_site

        s = get_current_site(request)
        out["sites"] = {"id": s.pk, "domain": s.domain}
    except Exception as exc:
        out["errors"]["sites"] = "%s: %s" % (type(exc).__name__, exc)


def _streamed_identity(request):
    """What a streaming answer's body sees of the site: computed while the
    body is sent, after every middleware has returned."""
    from django.conf import settings

    out = {"errors": {}}
    value = getattr(settings, "SITE_ID", _MISSING)
    if _kind(value) in ("int", "object"):
        try:
            out["site_id"] = int(value)
        except Exception as exc:
            out["errors"]["site_id"] = "%s: %s" % (type(exc).__name__, exc)
    _current_site(request, out)
    return out


def probe_response(request, reached, status):
    """The probe's answer, JSON. SiteMiddleware sends it streamed (see
    _streamed_probe)."""
    from django.http import JsonResponse

    data = {
        "siteplex_probe": 1,
        "reached_end": reached,
        "status": status,
        "settings_module": os.environ.get("DJANGO_SETTINGS_MODULE", ""),
        "overlay": {"mode": _STATE.get("mode", ""), "site_id": _STATE.get("site_id"),
                    "project_settings": _STATE.get("project_settings", "")},
    }
    try:
        data.update(identity(request))
    except Exception as exc:
        data["errors"] = {"probe": "%s: %s" % (type(exc).__name__, exc)}
    resp = JsonResponse(data)
    resp["X-Siteplex-Probe"] = "1"
    resp["Cache-Control"] = "no-store"
    resp._siteplex_probe = True
    resp._siteplex_data = data
    return resp


def _streamed_probe(request, response):
    """The probe's answer as a StreamingHttpResponse whose last member,
    "stream", is computed while it is sent, after SiteMiddleware has
    returned: what a streaming view's body sees of the site."""
    from django.http import StreamingHttpResponse

    data = getattr(response, "_siteplex_data", None)
    if data is None:
        return response
    head = json.dumps(data, default=str)

    def body():
        yield head[:-1].encode()
        try:
            streamed = _streamed_identity(request)
        except Exception as exc:
            streamed = {"errors": {"probe": "%s: %s" % (type(exc).__name__, exc)}}
        yield (', "stream": ' + json.dumps(streamed, default=str) + "}").encode()

    resp = StreamingHttpResponse(body(), status=response.status_code, content_type="application/json")
    resp["X-Siteplex-Probe"] = "1"
    resp["Cache-Control"] = "no-store"
    resp._siteplex_probe = True
    return resp
