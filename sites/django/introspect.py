# siteplex's Django introspection. siteplex embeds this script and runs it
# with the project's interpreter, in the project's root, with the env file's
# variables in the environment (see docs/django.md). It answers on file
# descriptor 3 with one JSON object and never starts a server, runs a
# migration or opens a database connection.
#
# It must run on every Python that Django 2.2+ supports (3.6 and later).
import builtins
import importlib
import importlib.abc
import io
import json
import os
import runpy
import sys
import traceback

SCHEMA = 1
ROOT = os.path.realpath(os.getcwd())
OUT = {"schema": SCHEMA}


def emit():
    data = json.dumps(OUT, default=str)
    try:
        with os.fdopen(3, "w") as f:
            f.write(data)
    except OSError:
        sys.stdout.write(data)


def last_line(exc):
    """The last line of a traceback, with the project file and line."""
    line = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    text = line[-1] if line else type(exc).__name__
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        fn = os.path.realpath(tb.tb_frame.f_code.co_filename)
        if under_root(fn):
            where = " (%s:%d)" % (os.path.relpath(fn, ROOT), tb.tb_lineno)
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename:
        where = " (%s:%s)" % (os.path.relpath(os.path.realpath(exc.filename), ROOT), exc.lineno)
    return text + where


def fail(stage, exc):
    OUT["error"] = {"stage": stage, "message": last_line(exc)}
    tb = exc.__traceback__
    while tb is not None:
        note_file(tb.tb_frame.f_code.co_filename)
        tb = tb.tb_next
    if isinstance(exc, SyntaxError) and exc.filename:
        note_file(exc.filename)
    finish()
    emit()
    sys.exit(0)


# --- what the settings depend on (the cache key) ---------------------------

SKIP_DIRS = []  # virtualenvs and site-packages under the root


def under_root(path):
    if not path or path.startswith("<"):
        return False
    p = os.path.realpath(path)
    if p != ROOT and not p.startswith(ROOT + os.sep):
        return False
    for d in SKIP_DIRS:
        if p == d or p.startswith(d + os.sep):
            return False
    return os.sep + ".siteplex" + os.sep not in p


FILES = set()  # files under the root the settings read
ABSENT = set()  # files under the root the settings looked for and did not find
ENV_READ = set()
ENV_ALL = [False]
RECORDING = [False]
RECORD_MISSING = [False]


def note_file(path):
    if path and under_root(path) and os.path.isfile(path):
        FILES.add(os.path.realpath(path))


def init_skip_dirs():
    prefixes = {sys.prefix, sys.exec_prefix, getattr(sys, "base_prefix", sys.prefix)}
    for p in list(sys.path) + list(prefixes):
        rp = os.path.realpath(p or ".")
        if rp != ROOT and ("site-packages" in rp or "dist-packages" in rp or rp in prefixes):
            SKIP_DIRS.append(rp)
    for p in prefixes:
        SKIP_DIRS.append(os.path.realpath(p))
    SKIP_DIRS[:] = [d for d in SKIP_DIRS if d != ROOT]


class RecordingEnviron(type(os.environ)):
    def __getitem__(self, key):
        if RECORDING[0]:
            ENV_READ.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        if RECORDING[0]:
            ENV_READ.add(key)
        return super().__contains__(key)

    def __iter__(self):
        if RECORDING[0]:
            ENV_ALL[0] = True
        return super().__iter__()

    def copy(self):
        if RECORDING[0]:
            ENV_ALL[0] = True
        return super().copy()


REAL_OPEN = builtins.open


def recording_open(file, *args, **kwargs):
    if RECORDING[0] and isinstance(file, (str, bytes, os.PathLike)):
        try:
            path = os.fsdecode(os.fspath(file))
            if not os.path.isabs(path):
                path = os.path.join(os.getcwd(), path)
            if under_root(path):
                if os.path.isfile(path):
                    FILES.add(os.path.realpath(path))
                else:
                    ABSENT.add(os.path.abspath(path))
        except (TypeError, ValueError):
            pass
    return REAL_OPEN(file, *args, **kwargs)


class MissingModuleRecorder(importlib.abc.MetaPathFinder):
    """Last on sys.meta_path: reached only for modules no finder found.
    It notes where they would have been under the root, so creating, say,
    local_settings.py later refreshes the cache."""

    def find_spec(self, name, path=None, target=None):
        if RECORD_MISSING[0]:
            base = name.rpartition(".")[2]
            for d in (path if path is not None else [ROOT]):
                d = os.fsdecode(d) if d else ROOT
                if under_root(d) or os.path.realpath(d) == ROOT:
                    ABSENT.add(os.path.join(d, base + ".py"))
                    ABSENT.add(os.path.join(d, base, "__init__.py"))
        return None


def project_modules(before):
    out = []
    for name, mod in list(sys.modules.items()):
        if name in before or mod is None:
            continue
        fn = getattr(mod, "__file__", None)
        if fn and under_root(fn):
            out.append(name)
    return out


# --- finding the settings module ---------------------------------------------


class Intercepted(BaseException):
    pass


def run_manage_py():
    """Runs manage.py the way `manage.py runserver` starts, but stops at
    the moment it hands over to Django's command line: what it set in the
    environment (DJANGO_SETTINGS_MODULE, dotenv files) is then in place."""
    path = os.path.join(ROOT, "manage.py")
    if not os.path.isfile(path):
        return False
    note_file(path)
    try:
        import django.core.management as mgmt
    except Exception:
        return False

    def stop(*args, **kwargs):
        raise Intercepted()

    mgmt.execute_from_command_line = stop
    mgmt.call_command = stop
    mgmt.ManagementUtility.execute = stop
    try:
        runpy.run_path(path, run_name="__main__")
    except Intercepted:
        return True
    except SystemExit:
        return False
    except Exception as exc:
        OUT.setdefault("warnings", []).append("manage.py raised %s" % last_line(exc))
        return False
    return False


def find_settings_module():
    before = os.environ.get("DJANGO_SETTINGS_MODULE")
    intercepted = run_manage_py()
    after = os.environ.get("DJANGO_SETTINGS_MODULE")
    if after:
        if intercepted and after != before:
            return after, "manage.py"
        return after, "environment"
    guess = os.environ.get("SITEPLEX_SETTINGS_GUESS", "")
    if guess:
        return guess, "guess"
    return "", ""


# --- SITE_ID -----------------------------------------------------------------


def site_id_info(mod, dsm, modules):
    MISSING = object()
    value = getattr(mod, "SITE_ID", MISSING)
    if value is MISSING:
        return {"kind": "missing"}
    if value is None:
        return {"kind": "none"}
    if isinstance(value, bool):
        return {"kind": "other", "repr": repr(value), "class": "bool"}
    if isinstance(value, int) and type(value) is int:
        env = env_source(value, dsm, modules)
        if env:
            return {"kind": "env", "value": value, "env_var": env}
        return {"kind": "int", "value": value}
    cls = type(value)
    out = {"kind": "object", "class": cls.__module__ + "." + cls.__qualname__, "settable": hasattr(value, "set")}
    default = getattr(value, "default", None)
    if isinstance(default, int) and not isinstance(default, bool):
        out["default"] = default
    dom = getattr(value, "default_domain", None)
    if isinstance(dom, str):
        out["default_domain"] = dom
    if isinstance(value, str):
        out = {"kind": "other", "class": "str", "repr": repr(value)[:80]}
    return out


def env_source(value, dsm, modules):
    """Which environment variable SITE_ID follows, checked by importing the
    settings again with that variable changed. "" when none."""
    candidates = []
    for name in sorted(ENV_READ):
        v = os.environ.get(name)
        if "SITE" in name.upper() or (v is not None and v.strip() == str(value)):
            candidates.append(name)
    sentinel = value + 7777777
    for name in candidates[:4]:
        if reimport_site_id(dsm, modules, name, str(sentinel)) == sentinel:
            return name
    return ""


def reimport_site_id(dsm, modules, name, val):
    saved = {m: sys.modules[m] for m in modules if m in sys.modules}
    old = os.environ.get(name)
    before = set(sys.modules)
    os.environ[name] = val
    try:
        for m in saved:
            del sys.modules[m]
        try:
            return getattr(importlib.import_module(dsm), "SITE_ID", None)
        except Exception:
            return None
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old
        for m in set(sys.modules) - before:
            sys.modules.pop(m, None)
        sys.modules.update(saved)


# --- the answer ----------------------------------------------------------------


def as_text(v):
    if v is None:
        return ""
    return os.fspath(v) if isinstance(v, os.PathLike) else str(v)


def databases(dbs):
    out = {}
    for alias, d in (dbs or {}).items():
        if not isinstance(d, dict):
            continue
        opts = {}
        for k, v in (d.get("OPTIONS") or {}).items():
            if isinstance(v, (str, int, float, bool)) or v is None:
                opts[str(k)] = v
            else:
                opts[str(k)] = str(v)
        out[alias] = {
            "engine": as_text(d.get("ENGINE")),
            "name": as_text(d.get("NAME")),
            "host": as_text(d.get("HOST")),
            "port": as_text(d.get("PORT")),
            "user": as_text(d.get("USER")),
            "password": as_text(d.get("PASSWORD")),
            "options": opts,
        }
    return out


def model_table(apps, label):
    try:
        return apps.get_model(label)._meta.db_table
    except Exception:
        return ""


def frameworks(settings, app_names, apps):
    fw = {}
    tables = {}

    def table(label, default):
        t = model_table(apps, label) if apps is not None else ""
        tables[label] = t or default
        return tables[label]

    if "django.contrib.sites" in app_names:
        fw["sites"] = True
        table("sites.Site", "django_site")
    if "multisite" in app_names:
        fw["multisite"] = True
        table("multisite.Alias", "multisite_alias")
    if "django_multisite_plus" in app_names:
        fw["multisite_plus"] = True
        table("django_multisite_plus.Site", "django_multisite_plus_site")
    if any(a == "mezzanine.core" or a == "mezzanine.boot" for a in app_names):
        fw["mezzanine"] = True
    for w in ("wagtail", "wagtail.core", "wagtail.wagtailcore"):
        if w in app_names:
            fw["wagtail"] = w
            table("wagtailcore.Site", "wagtailcore_site")
            break
    if "django_tenants" in app_names:
        t = {
            "tenant_model": str(getattr(settings, "TENANT_MODEL", "") or ""),
            "domain_model": str(getattr(settings, "TENANT_DOMAIN_MODEL", "") or ""),
            "public_schema": str(getattr(settings, "PUBLIC_SCHEMA_NAME", "public") or "public"),
        }
        t["tenant_table"] = table(t["tenant_model"], "") if t["tenant_model"] else ""
        t["domain_table"] = table(t["domain_model"], "") if t["domain_model"] else ""
        fw["django_tenants"] = t
    if "django_pgschemas" in app_names:
        tenants = getattr(settings, "TENANTS", {}) or {}
        default = tenants.get("default", {}) or {}
        t = {
            "tenant_model": str(default.get("TENANT_MODEL", "") or ""),
            "domain_model": str(default.get("DOMAIN_MODEL", "") or ""),
            "public_schema": "public",
            "static": [],
        }
        t["tenant_table"] = table(t["tenant_model"], "") if t["tenant_model"] else ""
        t["domain_table"] = table(t["domain_model"], "") if t["domain_model"] else ""
        for schema, conf in tenants.items():
            if schema in ("public", "default") or not isinstance(conf, dict):
                continue
            t["static"].append({
                "schema": str(schema),
                "domains": [str(x) for x in conf.get("DOMAINS", []) or []],
                "fallback_domains": [str(x) for x in conf.get("FALLBACK_DOMAINS", []) or []],
            })
        fw["django_pgschemas"] = t
    return fw, tables


def allowed_hosts(value):
    # type(), not isinstance(): isinstance asks a LazyObject's __class__,
    # which evaluates it (django-multisite's reads multisite_alias).
    if issubclass(type(value), (list, tuple)):
        return [str(h) for h in value], ""
    cls = type(value)
    return [], cls.__module__ + "." + cls.__qualname__


class NoDatabase(Exception):
    pass


def guard_database():
    """django.setup() must not reach the database: make any attempt fail."""
    from django.db.backends.base import base

    def refuse(self, *args, **kwargs):
        raise NoDatabase("siteplex's introspection does not connect to the database; an app's ready() tried to")

    base.BaseDatabaseWrapper.connect = refuse


def finish():
    OUT["settings_files"] = sorted(FILES)
    OUT["absent_files"] = sorted(p for p in ABSENT if not os.path.exists(p))
    OUT["env_read"] = sorted(ENV_READ)
    OUT["env_all"] = ENV_ALL[0]


def main():
    # What a dev process sees (aldryn's IS_RUNNING_DEVSERVER reads it), for
    # manage.py and the settings alike.
    sys.argv = [os.path.join(ROOT, "manage.py"), "runserver", "--noreload"]
    init_skip_dirs()
    OUT["python"] = sys.executable
    OUT["python_version"] = "%d.%d.%d" % sys.version_info[:3]
    OUT["sys_path"] = [os.path.realpath(p) for p in sys.path if p and os.path.isdir(p) and os.path.realpath(p) != ROOT]
    if ROOT not in [os.path.realpath(p or ".") for p in sys.path]:
        sys.path.insert(0, ROOT)
    os.environ.__class__ = RecordingEnviron
    builtins.open = recording_open
    io.open = recording_open
    sys.meta_path.append(MissingModuleRecorder())
    try:
        import django
    except Exception as exc:
        fail("django", exc)
    OUT["django"] = django.get_version()

    RECORDING[0] = True
    dsm, source = find_settings_module()
    if not dsm:
        RECORDING[0] = False
        OUT["error"] = {"stage": "settings", "message": "no settings module: DJANGO_SETTINGS_MODULE is not set and manage.py does not set it"}
        finish()
        emit()
        return
    OUT["settings_module"] = dsm
    OUT["settings_from"] = source
    os.environ["DJANGO_SETTINGS_MODULE"] = dsm
    before = set(sys.modules)
    RECORD_MISSING[0] = True
    try:
        mod = importlib.import_module(dsm)
    except BaseException as exc:
        RECORDING[0] = RECORD_MISSING[0] = False
        fail("settings", exc)
    RECORDING[0] = RECORD_MISSING[0] = False
    mods = project_modules(before)
    for m in mods:
        note_file(getattr(sys.modules[m], "__file__", None))
    note_file(getattr(mod, "__file__", None))
    OUT["site_id"] = site_id_info(mod, dsm, mods)

    from django.conf import settings

    try:
        settings.INSTALLED_APPS
    except Exception as exc:
        fail("settings", exc)
    apps = None
    try:
        guard_database()
        django.setup()
        from django.apps import apps as registry

        apps = registry
        app_names = [a.name for a in registry.get_app_configs()]
    except Exception as exc:
        OUT["setup_error"] = last_line(exc)
        app_names = []
        for entry in settings.INSTALLED_APPS:
            name = str(entry)
            if ".apps." in name:
                name = name.split(".apps.")[0]
            app_names.append(name)
    OUT["installed_apps"] = [str(a) for a in settings.INSTALLED_APPS]
    OUT["middleware"] = [str(m) for m in (getattr(settings, "MIDDLEWARE", None) or [])]
    OUT["allowed_hosts"], OUT["allowed_hosts_lazy"] = allowed_hosts(settings.ALLOWED_HOSTS)
    OUT["debug"] = bool(settings.DEBUG)
    OUT["secure_proxy_ssl_header"] = settings.SECURE_PROXY_SSL_HEADER is not None
    OUT["silenced_system_checks"] = [str(c) for c in (settings.SILENCED_SYSTEM_CHECKS or [])]
    OUT["databases"] = databases(settings.DATABASES)
    OUT["frameworks"], OUT["tables"] = frameworks(settings, app_names, apps)
    finish()
    emit()


if __name__ == "__main__":
    main()
