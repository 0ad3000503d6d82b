# siteplex's warm parent (see docs/preload.md). siteplex runs this script with
# the project's interpreter as `python - siteplex-preload` (the script arrives
# on stdin) in the project root, with fd 3 a SOCK_SEQPACKET unix socket to
# siteplex. It is siteplex's own fixed script, never user code.
#
# It boots the project exactly as `manage.py runserver 127.0.0.1:PORT
# --noreload` does, up to the point where runserver would start serving: it
# runs manage.py, which runs Django's ManagementUtility, which loads the
# settings, calls django.setup() and fetches the runserver command. There the
# hook below takes over: it imports the URLconf, builds the WSGI handler,
# runs the system checks once (their output is replayed by every child),
# closes every database connection, collects and freezes the garbage
# collector's objects, checks that only the main thread runs, and reports
# "ready". Then it forks one child per fork request. The child continues
# Django's own runserver code (inner_run) on its port, as a plain runserver
# would.
#
# Messages are JSON, one per datagram. siteplex -> parent:
#   {"op": "fork", "id", "site_id", "port", "env": {...}, "allowed_hosts": [...]}
#       with the child's stdout and stderr as two SCM_RIGHTS fds
#   {"op": "close", "grace_ms"}     then EOF: stop every child and exit
# parent -> siteplex:
#   {"op": "ready", "pid", "python", "django", "settings", "site_id_kind", "overlay", "boot_ms"}
#   {"op": "fail", "reason", "detail"}           cannot preload (the parent exits)
#   {"op": "forked", "id", "pid"}  with the child's pidfd (SCM_RIGHTS) when the OS has one
#   {"op": "error", "id", "reason", "fallback"}  this fork failed
#   {"op": "exit", "pid", "code"}                a child ended (128+N for signal N)

import os
import sys

CTL_FD = 3
MAX_MSG = 256 * 1024
DETAIL_MAX = 32 * 1024
KNOWN_RUNSERVERS = (
    "django.core.management.commands.runserver",
    "django.contrib.staticfiles.management.commands.runserver",
)


class Fallback(Exception):
    """The project cannot be preloaded; reason says why, in one line."""

    def __init__(self, reason, detail=""):
        Exception.__init__(self, reason)
        self.reason = reason
        self.detail = detail


def last_line(exc=None):
    import traceback

    if exc is None:
        text = traceback.format_exc()
    else:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    lines = [l for l in text.strip().splitlines() if l.strip()]
    return lines[-1].strip() if lines else "unknown error"


def exit_code(status):
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 1


class Warm(object):
    """The parent's state: one instance, made in main()."""

    def __init__(self, ctl):
        import time

        self.ctl = ctl
        self.t0 = time.monotonic()
        self.manage = os.environ.pop("SITEPLEX_PRELOAD_MANAGE", "manage.py")
        self.hooked = False  # the runserver hook ran (the project booted)
        self.child = None  # the fork request, in a child
        self.children = set()  # pids of live children
        self.cmd = None
        self.options = None
        self.checks = (("", "", None), ("", "", None))
        self.site_id_kind = "unset"
        # siteplex's overlay settings module runs in per-site mode: it, not
        # this script, makes each child its site (become_site).
        self.overlay = False
        self.wake_r = self.wake_w = -1
        self.stopping = False
        self.libc = None
        self.pid = os.getpid()

    # -- messages -----------------------------------------------------------

    def send(self, obj, fds=()):
        import array
        import json
        import socket

        data = json.dumps(obj).encode()
        anc = []
        if fds:
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        try:
            self.ctl.sendmsg([data], anc)
        except OSError:
            pass  # siteplex is gone: the loop sees EOF next

    def fail(self, reason, detail=""):
        self.send({"op": "fail", "reason": reason, "detail": detail[-DETAIL_MAX:]})

    # -- boot ---------------------------------------------------------------

    def boot(self):
        """Runs manage.py; returns only in a child (after runserver ended)."""
        import runpy

        if not sys.platform.startswith("linux"):
            raise Fallback("preload needs Linux (this is %s)" % sys.platform)
        if sys.version_info < (3, 7):
            raise Fallback("preload needs Python 3.7 or newer (gc.freeze); %s is %s" % (sys.executable, sys.version.split()[0]))
        try:
            import django  # noqa: F401
            from django.core import management
            from django.core.management.commands import runserver
        except Exception:
            raise Fallback("Django is not importable by %s: %s" % (sys.executable, last_line()))
        try:
            import ctypes

            self.libc = ctypes.CDLL(None, use_errno=True)
            self.libc.prctl
        except Exception:
            raise Fallback("cannot arm a parent-death signal for the children (ctypes/prctl): %s" % last_line())

        manage = os.path.abspath(self.manage)
        if not os.path.isfile(manage):
            raise Fallback("no %s in %s" % (self.manage, os.getcwd()))
        # As `python manage.py runserver 127.0.0.1:PORT --noreload` would have
        # them; the port is each child's.
        sys.argv = [self.manage, "runserver", "127.0.0.1:0", "--noreload"]
        sys.path[0] = os.path.dirname(manage)

        warm = self
        base_run = runserver.Command.run
        base_fetch = management.ManagementUtility.fetch_command

        def fetch_command(utility, subcommand):
            cmd = base_fetch(utility, subcommand)
            if subcommand == "runserver":
                warm.check_command(cmd, runserver.Command)
            return cmd

        def run(cmd, **options):
            if warm.hooked:  # not ours: a nested runserver call
                return base_run(cmd, **options)
            warm.hooked = True
            return warm.serve(cmd, options)

        management.ManagementUtility.fetch_command = fetch_command
        runserver.Command.run = run
        runpy.run_path(manage, run_name="__main__")
        if self.child is None:
            raise Fallback("%s returned without starting runserver (it must call Django's execute_from_command_line)" % self.manage)

    def check_command(self, cmd, base):
        """Refuses a runserver that is not Django's own (Channels, Daphne…)."""
        from django.contrib.staticfiles.management.commands import runserver as static_rs
        from django.core.management.base import BaseCommand

        klass = type(cmd)
        own = (
            klass.inner_run is base.inner_run
            and klass.get_handler in (base.get_handler, static_rs.Command.get_handler)
            and klass.server_cls is base.server_cls
            and klass.check is BaseCommand.check
            and klass.check_migrations is BaseCommand.check_migrations
        )
        if not own:
            raise Fallback(
                "runserver comes from %s.%s, which changes how it serves; preload forks only Django's own runserver"
                % (klass.__module__, klass.__name__)
            )

    def serve(self, cmd, options):
        """Django's runserver reached run(): warm up, report ready, fork on
        request. In the parent it never returns; in a child it returns what
        runserver's inner_run returns."""
        self.cmd, self.options = cmd, options
        self.warm_up()
        self.make_forkable()
        import platform

        import django
        from django.conf import settings

        self.send(
            {
                "op": "ready",
                "pid": os.getpid(),
                "python": platform.python_version(),
                "django": django.get_version(),
                "settings": settings.SETTINGS_MODULE,
                "site_id_kind": self.site_id_kind,
                "overlay": self.overlay,
                "boot_ms": int((__import__("time").monotonic() - self.t0) * 1000),
            }
        )
        self.loop()  # returns only in a child
        self.become_site()
        return cmd.inner_run(None, **options)

    def warm_up(self):
        """Loads what every site shares. Errors here are left for the
        children: they meet them again on the same path as runserver."""
        import io

        from django.conf import settings
        from django.core.management.base import OutputWrapper

        try:
            from django.urls import get_resolver

            resolver = get_resolver()
            resolver.url_patterns
            resolver.reverse_dict
        except Exception:
            pass
        # runserver's own checks, once; every child replays their output.
        cmd = self.cmd
        saved = cmd.stdout, cmd.stderr
        results = []
        for step in (lambda: cmd.check(display_num_errors=True), cmd.check_migrations):
            out, err = io.StringIO(), io.StringIO()
            cmd.stdout, cmd.stderr = OutputWrapper(out), OutputWrapper(err)
            exc = None
            try:
                step()
            except Exception as e:
                exc = e
            finally:
                cmd.stdout, cmd.stderr = saved
            results.append((out.getvalue(), err.getvalue(), exc))
            if exc is not None:
                results.append(("", "", None))
                break
        self.checks = tuple(results)
        try:
            cmd.get_handler(None, **self.options)
        except Exception:
            pass
        try:
            if settings.USE_I18N:
                from django.utils import translation

                translation.activate(settings.LANGUAGE_CODE)
                translation.deactivate()
        except Exception:
            pass
        try:
            from django.template import engines

            engines.all()
        except Exception:
            pass
        self.site_id_kind = site_id_kind(settings)
        self.overlay = overlay_loaded()

    def make_forkable(self):
        import gc

        from django.db import connections

        try:
            connections.close_all()
        except Exception:
            raise Fallback("closing the database connections failed: %s" % last_line())
        still = []
        for alias in connections:
            try:
                if connections[alias].connection is not None:
                    still.append(alias)
            except Exception:
                still.append(alias)
        if still:
            raise Fallback("database connection %s stays open after close_all()" % ", ".join(repr(a) for a in still))
        try:
            from django.core.cache import close_caches

            close_caches()
        except Exception:
            pass
        gc.collect()
        gc.freeze()
        self.check_threads()

    def check_threads(self):
        import threading

        others = [t for t in threading.enumerate() if t is not threading.main_thread()]
        if others:
            raise Fallback(
                "threads running after the project loaded: %s; a fork keeps only the forking thread"
                % ", ".join(repr(t.name) for t in others)
            )
        try:
            native = len(os.listdir("/proc/self/task"))
        except OSError:
            native = 1
        if native > 1:
            raise Fallback(
                "%d native threads running after the project loaded (started by an extension module); a fork keeps only the forking thread"
                % (native - 1)
            )

    # -- the fork loop --------------------------------------------------------

    def loop(self):
        """Serves fork requests until siteplex closes the socket. Returns only
        in a child, with self.child set."""
        import select
        import signal

        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *a: None)
        signal.signal(signal.SIGTERM, self.on_term)
        poller = select.poll()
        poller.register(self.ctl.fileno(), select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        while not self.stopping:
            for fd, ev in poller.poll():
                if fd == self.wake_r:
                    try:
                        while os.read(self.wake_r, 512):
                            pass
                    except BlockingIOError:
                        pass
                    self.reap()
                elif fd == self.ctl.fileno():
                    if self.handle_message():
                        return
        # The socket closed without a "close": siteplex is gone.
        self.shutdown(1.0)

    def on_term(self, signum, frame):
        """SIGTERM is the parent-death signal siteplex arms: siteplex is
        gone, nobody is left to report to. Every child's group (what the
        children started included) gets SIGKILL at once."""
        import signal

        if os.getpid() != self.pid:  # a child before it reset its handlers
            os._exit(1)
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        os._exit(0)

    def handle_message(self):
        """Handles one datagram; True in a freshly forked child."""
        import json
        import socket

        try:
            data, anc, flags, _ = self.ctl.recvmsg(MAX_MSG, socket.CMSG_SPACE(8 * 4))
        except InterruptedError:
            return False
        except OSError:
            data = b""
        fds = []
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(payload) - len(payload) % 4
                import array

                a = array.array("i")
                a.frombytes(payload[:n])
                fds.extend(a)
        if not data:
            for fd in fds:
                os.close(fd)
            self.stopping = True
            return False
        try:
            msg = json.loads(data.decode())
        except ValueError:
            msg = {}
        op = msg.get("op")
        if op == "close":
            for fd in fds:
                os.close(fd)
            self.shutdown(msg.get("grace_ms", 5000) / 1000.0)
        if op != "fork":
            for fd in fds:
                os.close(fd)
            return False
        return self.fork(msg, fds)

    def fork(self, req, fds):
        rid = req.get("id")
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            self.send({"op": "error", "id": rid, "reason": "fork request without stdout and stderr"})
            return False
        try:
            self.check_threads()
            if req.get("site_id") and not self.overlay and self.site_id_kind.startswith("other"):
                raise Fallback("settings.SITE_ID is a %s, which a forked child cannot set" % self.site_id_kind[6:])
        except Fallback as e:
            for fd in fds:
                os.close(fd)
            self.send({"op": "error", "id": rid, "reason": e.reason, "fallback": True})
            return False
        sys.stdout.flush()
        sys.stderr.flush()
        sync_r, sync_w = os.pipe()
        ppid = os.getpid()
        try:
            pid = os.fork()
        except OSError as e:
            for fd in fds + [sync_r, sync_w]:
                os.close(fd)
            self.send({"op": "error", "id": rid, "reason": "fork failed: %s" % e})
            return False
        if pid == 0:
            os.close(sync_r)
            try:
                self.child_setup(ppid, fds)
                os.write(sync_w, b"ok")
                os.close(sync_w)
            except BaseException:
                try:
                    os.write(sync_w, ("setup failed: " + last_line()).encode())
                finally:
                    os._exit(1)
            self.child = req
            return True
        for fd in fds:
            os.close(fd)
        os.close(sync_w)
        got = self.read_sync(sync_r)
        os.close(sync_r)
        if got != b"ok":
            # Reaped by the loop; siteplex ignores the exit of a pid it never got.
            reason = got.decode(errors="replace") or "the child exited while setting itself up"
            self.send({"op": "error", "id": rid, "reason": reason})
            return False
        self.children.add(pid)
        pidfds = []
        if hasattr(os, "pidfd_open"):
            try:
                pidfds.append(os.pidfd_open(pid))
            except OSError:
                pass
        self.send({"op": "forked", "id": rid, "pid": pid}, pidfds)
        for fd in pidfds:
            os.close(fd)
        return False

    def read_sync(self, fd):
        import select

        got = b""
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while True:
            if not poller.poll(10000):
                return b"the child did not finish setting itself up within 10s"
            b = os.read(fd, 4096)
            if not b:
                return got
            got += b

    def child_setup(self, ppid, fds):
        """In the child, before anything else: own session and process group,
        SIGKILL when the warm parent dies, the site's stdout and stderr."""
        import signal

        os.setsid()
        if self.libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
            raise OSError("prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != ppid:
            os._exit(1)  # the parent died before the signal was armed
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        self.ctl.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        for fd in fds:
            if fd > 2:
                os.close(fd)

    def reap(self):
        import signal

        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid == 0:
                return
            pid = info.si_pid
            # The group is the site's unit: what its leader left behind goes
            # with it. The pgid stays reserved while the zombie exists.
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            _, status = os.waitpid(pid, 0)
            if pid in self.children:
                self.children.discard(pid)
                self.send({"op": "exit", "pid": pid, "code": exit_code(status)})

    def shutdown(self, grace):
        """SIGTERM to every child's group, SIGKILL after grace, then exit."""
        import signal
        import time

        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in list(self.children):
                try:
                    os.killpg(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + grace
            while self.children and time.monotonic() < deadline:
                self.reap()
                time.sleep(0.01)
        while self.children:
            self.reap()
            time.sleep(0.01)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    # -- in the child -------------------------------------------------------

    def become_site(self):
        """Makes this freshly forked child its site, then lets Django's
        runserver go on as a plain `runserver 127.0.0.1:PORT --noreload`."""
        import random

        from django.conf import settings

        req = self.child
        for k, v in (req.get("env") or {}).items():
            os.environ[k] = v
        port = int(req["port"])
        sys.argv = [self.manage, "runserver", "127.0.0.1:%d" % port, "--noreload"]
        cmd = self.cmd
        cmd.addr, cmd.port = "127.0.0.1", str(port)
        cmd.use_ipv6 = cmd._raw_ipv6 = False
        self.options["addrport"] = "127.0.0.1:%d" % port
        random.seed()
        site_id = req.get("site_id") or 0
        if self.overlay:
            # One mechanism: the overlay makes this process its site from
            # the site's environment (now in os.environ) with the same
            # rules it applied at import: SITE_ID, MEZZANINE_SITE_ID,
            # ALLOWED_HOSTS, the sites cache.
            sys.modules["siteplex_runtime"].reconfigure()
        else:
            if site_id:
                set_site_id(settings, self.site_id_kind, int(site_id))
            extra = [h for h in (req.get("allowed_hosts") or []) if h]
            if extra:
                settings.ALLOWED_HOSTS = ExtendedHosts(settings.ALLOWED_HOSTS, extra)
        hook = getattr(settings, "SITEPLEX_PRELOAD_CHILD", None)
        if callable(hook):
            hook(int(site_id))
        (out1, err1, exc1), (out2, err2, exc2) = self.checks

        def replay(out, err, exc):
            def step(*args, **kwargs):
                if out:
                    sys.stdout.write(out)
                    sys.stdout.flush()
                if err:
                    sys.stderr.write(err)
                    sys.stderr.flush()
                if exc is not None:
                    raise exc

            return step

        cmd.check = replay(out1, err1, exc1)
        cmd.check_migrations = replay(out2, err2, exc2)


class ExtendedHosts(object):
    """settings.ALLOWED_HOSTS plus the site's names, without evaluating a
    lazy ALLOWED_HOSTS (django-multisite's reads the database)."""

    def __init__(self, base, extra):
        self.base = base
        self.extra = list(extra)

    def __iter__(self):
        for h in self.base:
            yield h
        for h in self.extra:
            yield h

    def __contains__(self, h):
        return h in self.extra or h in self.base

    def __repr__(self):
        return "ExtendedHosts(%r, %r)" % (self.base, self.extra)


def overlay_loaded():
    """True when siteplex's overlay settings module was loaded in per-site
    mode (its runtime imported, SITEPLEX_OVERLAY=per-site)."""
    rt = sys.modules.get("siteplex_runtime")
    return rt is not None and hasattr(rt, "reconfigure") and os.environ.get("SITEPLEX_OVERLAY") == "per-site"


def site_id_kind(settings):
    """How settings.SITE_ID can be set per child: int, none, unset, str,
    multisite (a django-multisite SiteID), or other:<type>."""
    if not hasattr(settings, "SITE_ID"):
        return "unset"
    v = settings.SITE_ID
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "other:bool"
    if isinstance(v, int):
        return "int"
    try:
        from multisite.threadlocals import SiteID

        if isinstance(v, SiteID):
            return "multisite"
    except Exception:
        pass
    if isinstance(v, str):
        return "str"
    return "other:%s.%s" % (type(v).__module__, type(v).__name__)


def set_site_id(settings, kind, site_id):
    """The child's site: what siteplex's SITE_ID would have made of the
    settings in a plain process."""
    if kind == "multisite":
        from multisite.threadlocals import SiteID

        # A threading.local re-runs __init__ in every request thread with
        # its constructor's arguments: a new object is the only way to
        # change the default for all threads.
        settings.SITE_ID = SiteID(default=site_id)
    elif kind == "str":
        settings.SITE_ID = str(site_id)
    else:
        settings.SITE_ID = site_id
    apps = list(getattr(settings, "INSTALLED_APPS", []))
    if "MEZZANINE_SITE_ID" in os.environ or any(a == "mezzanine" or a.startswith("mezzanine.") for a in apps):
        os.environ["MEZZANINE_SITE_ID"] = str(site_id)
    try:
        from django.apps import apps as registry

        if registry.is_installed("django.contrib.sites"):
            from django.contrib.sites.models import Site

            Site.objects.clear_cache()
    except Exception:
        pass


def main():
    import socket
    import traceback

    # stdin carried this script; nothing after it may read the pipe.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET, 0, CTL_FD)
    warm = Warm(ctl)
    code = 0
    reported = False
    try:
        warm.boot()
    except SystemExit as e:
        code = e.code
    except BaseException as e:
        code = 1
        if warm.child is not None:
            traceback.print_exc()
        else:
            reason, detail = describe_failure(e, warm)
            sys.stderr.write(detail)
            warm.fail(reason, detail)
            reported = True
    if warm.child is None:
        if not reported:
            # manage.py exited (a CommandError, a usage error) before serving.
            warm.fail("%s runserver exited with status %s before it served" % (warm.manage, code))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    # A child: end like the interpreter would after runserver returned.
    if code is None:
        code = 0
    elif not isinstance(code, int):
        sys.stderr.write("%s\n" % code)
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        import atexit

        atexit._run_exitfuncs()
    finally:
        os._exit(code)


def describe_failure(exc, warm):
    import traceback

    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if isinstance(exc, Fallback):
        return exc.reason, exc.detail or ""
    line = last_line(exc)
    try:
        from django.conf import settings

        configured = settings.configured
    except Exception:
        configured = False
    if not configured:
        return "the settings module %s failed to import: %s" % (os.environ.get("DJANGO_SETTINGS_MODULE", "(DJANGO_SETTINGS_MODULE is not set)"), line), detail
    return "%s runserver failed before it served: %s" % (warm.manage, line), detail


main()
