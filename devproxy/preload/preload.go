// Package preload runs per-site Django processes forked from one warm
// parent: a Python process that loaded the project once (settings,
// django.setup(), the URLconf, the WSGI handler, runserver's checks) and
// forks a child per site, each serving exactly what `manage.py runserver
// 127.0.0.1:PORT --noreload` would. Children share the parent's memory
// copy-on-write and skip Django's boot, so a site starts in milliseconds.
//
// The package is self-contained: the supervisor adapts a Parent into its
// process runner. A Child mirrors the supervisor's process (PID, Addr,
// Wait, Stop). How it works, when it is safe and what falls back:
// docs/preload.md. Linux only; elsewhere StartParent returns Unavailable.
package preload

import (
	"errors"
	"io"
	"time"
)

// DefaultGrace is how long Close lets children finish after SIGTERM.
const DefaultGrace = 5 * time.Second

// ParentSpec is what StartParent needs to boot a warm parent.
type ParentSpec struct {
	// Python is the project's interpreter (required).
	Python string
	// Dir is the project root: the working folder, where ManagePy is.
	Dir string
	// ManagePy is manage.py's path relative to Dir; "" = "manage.py". The
	// parent runs it as `manage.py runserver 127.0.0.1:0 --noreload` and
	// takes over when runserver is about to serve.
	ManagePy string
	// Env is the parent's complete environment (KEY=VALUE), as a site's
	// process would get it: DJANGO_SETTINGS_MODULE and PYTHONPATH of the
	// overlay, the env file, PYTHONUNBUFFERED=1, and a SITE_ID and PORT for
	// settings that require them at import. nil = this process's own.
	Env []string
	// Stdout and Stderr receive the parent's own output (prints at import,
	// warnings, its tracebacks). nil = discarded.
	Stdout, Stderr io.Writer
}

// ChildSpec is one site's process, forked from the parent.
type ChildSpec struct {
	// SiteID becomes settings.SITE_ID in the child, kept in the kind the
	// settings gave it (int, str, or a new django-multisite SiteID with this
	// default); MEZZANINE_SITE_ID follows it when Mezzanine is installed.
	// 0 leaves SITE_ID as the parent loaded it. With the overlay loaded
	// (Info.Overlay) the overlay sets SITE_ID from Env instead.
	SiteID int64
	// Port is where the child serves, on 127.0.0.1 (required).
	Port int
	// Env (KEY=VALUE) is set in the child's os.environ on top of the
	// parent's environment. Later entries win.
	Env []string
	// AllowedHosts are added to settings.ALLOWED_HOSTS in the child
	// (without the overlay; with it, the overlay's names in Env are).
	AllowedHosts []string
	// Stdout and Stderr receive the child's output through pipes siteplex
	// owns; Wait returns only after both reached EOF. nil = discarded.
	Stdout, Stderr io.Writer
}

// Info describes a ready parent.
type Info struct {
	PID      int
	Python   string // the interpreter's version, e.g. "3.11.2"
	Django   string // Django's version
	Settings string // the settings module
	// SiteIDKind is how settings.SITE_ID was loaded: int, str, none,
	// unset, multisite, or other:<type> (a child cannot set it then).
	SiteIDKind string
	// Overlay is true when siteplex's overlay settings module loaded in
	// per-site mode: each child then becomes its site through the
	// overlay's siteplex_runtime.reconfigure(), from its environment
	// (SITEPLEX_SITE_ID, SITEPLEX_ALLOWED_HOSTS, …), and ChildSpec.SiteID
	// and AllowedHosts only name the site for SITEPLEX_PRELOAD_CHILD.
	Overlay bool
	// Boot is how long the parent took from start to ready.
	Boot time.Duration
}

// Unavailable says why a project cannot be preloaded: the caller starts
// its sites the plain way and shows Reason. StartParent returns it for
// every failure; Fork returns it when the parent can no longer fork safely
// (a thread appeared) or cannot set this child's SITE_ID.
type Unavailable struct {
	// Reason is one line, e.g. "threads running after the project loaded:
	// 'sentry-worker'; a fork keeps only the forking thread".
	Reason string
	// Detail is the traceback or the parent's last output lines ("" if none).
	Detail string
	// Err is the underlying error, if any (a context error, an exec error).
	Err error
}

func (e *Unavailable) Error() string { return "cannot preload: " + e.Reason }
func (e *Unavailable) Unwrap() error { return e.Err }

// ErrParentGone is wrapped by Fork's error, and by the Wait of every child
// still running, when the parent process ended: the caller boots a new
// parent before the next fork.
var ErrParentGone = errors.New("the warm parent is gone")
