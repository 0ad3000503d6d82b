// Package supervisor runs siteplex's site processes: one per site (or one
// for every site in single mode), started lazily, reloaded on code
// changes, restarted after a crash, backed off when they keep dying,
// stopped when idle, and never left behind when siteplex ends. It also
// owns their output (ring buffers and log files).
//
// The proxy (package devproxy) asks it for a site's backend address with
// Acquire; the docker runner (package compose) implements its Runner.
// What it does is described in docs/supervisor.md.
package supervisor

import (
	"context"
	"io"
	"time"

	"github.com/siteplex/siteplex/sites"
)

// Mode says how many processes serve the sites.
type Mode string

const (
	// PerSite runs one process per routed site (the default).
	PerSite Mode = "per-site"
	// Single runs one process for all sites, with the forced SITE_ID.
	Single Mode = "single"
)

// The defaults of Config, in one place (docs/engine.md lists them as the
// defaults of the flags).
const (
	// DefaultMode is the mode of a zero Config.
	DefaultMode = PerSite
	// DefaultBootTimeout is how long a request waits for a starting process.
	DefaultBootTimeout = 60 * time.Second
	// DefaultIdleTimeout stops a process that served nothing for this long.
	DefaultIdleTimeout = 15 * time.Minute
	// IdleNever, as Config.IdleTimeout, never stops an idle process.
	IdleNever time.Duration = -1
	// stopGrace is the time between SIGTERM and SIGKILL
	// (docs/supervisor.md, "Starting, waiting, reloading").
	stopGrace = 5 * time.Second
)

// State is a site process's state, as shown in the UI and /api/status.
type State string

const (
	Stopped  State = "stopped"
	Starting State = "starting"
	Running  State = "running"
	Crashed  State = "crashed"
	Backoff  State = "backoff"
)

// SiteStatus is one site's process in a status snapshot (and in GET
// /api/status).
type SiteStatus struct {
	ID       int64  `json:"id"`
	Slug     string `json:"slug"`
	Domain   string `json:"domain"`
	State    State  `json:"state"`
	PID      int    `json:"pid"`
	Port     int    `json:"port"`
	Restarts int    `json:"restarts"`
	// LastExit is the exit code of the last exit, nil if it never exited.
	LastExit *int `json:"last_exit_code"`
	// Requests counts the requests the proxy sent to the site; the
	// supervisor does not count them and leaves it 0.
	Requests int64 `json:"requests"`
	// StartedAt is when the current process started (zero when stopped).
	StartedAt time.Time `json:"started_at,omitzero"`
	// BackoffUntil is when a crash-looping site may be started again.
	BackoffUntil time.Time `json:"backoff_until,omitzero"`
	// Identity is the identity probe's verdict on the site's process
	// (docs/django.md, "The identity probe"); the supervisor does not
	// probe and leaves it nil, the engine fills it in.
	Identity *Identity `json:"identity,omitempty"`
	// Preloaded is true when the current process was forked from a warm
	// parent (Config.Preload; docs/preload.md).
	Preloaded bool `json:"preloaded,omitempty"`
	// PreloadReason says why the current process started the plain way
	// although preload is on ("" when it was forked, or preload is off).
	PreloadReason string `json:"preload_reason,omitempty"`
}

// Identity is whether a site's process serves that site, as the engine's
// identity probe found (docs/engine.md, "Identity").
type Identity struct {
	// Checked is false when nothing was probed: the process is still
	// being probed, or cannot be (no overlay: Detail says why).
	Checked bool `json:"checked"`
	// OK is true when every name form probed reached the site.
	OK bool `json:"ok"`
	// Detail is one line: "✓ site 3 on gh.localhost, example.gh", or the
	// loud "✗ serves site 1, expected 3, on …: settings ignore SITE_ID — …".
	Detail string `json:"detail"`
	// PID is the process the verdict is about (0 when none was probed).
	PID int `json:"pid,omitempty"`
	// At is when the verdict was reached.
	At time.Time `json:"at,omitzero"`
}

// Mark is the verdict's one-character form for tables: ✓, ✗, or "" when
// nothing was checked.
func (i *Identity) Mark() string {
	switch {
	case i == nil || !i.Checked:
		return ""
	case i.OK:
		return "✓"
	}
	return "✗"
}

// PreloadStatus says how site processes start when preload was asked for
// (GET /api/status "preload"; docs/preload.md).
type PreloadStatus struct {
	// On is true when preload applies: per-site mode, the local runner and
	// Django's runserver as the command. False: Reason says why not, and
	// every site starts the plain way.
	On bool `json:"on"`
	// ParentPID is the warm parent new site processes are forked from; 0
	// while none runs (before the first start, after a code change until
	// the next start, or when it cannot boot).
	ParentPID int `json:"parent_pid,omitempty"`
	// Reason says why sites start the plain way ("" while they are
	// forked): preload does not apply, or the warm parent could not boot or
	// fork safely (a thread at import, settings that raise, …).
	Reason string `json:"reason,omitempty"`
}

// PreloadLog names the log of the warm parents: their own output (prints
// at import, tracebacks) and siteplex's lines about them, in
// Logs(PreloadLog, n) and .siteplex/logs/_preload.log. No site slug
// starts with "_".
const PreloadLog = "_preload"

// LogLine is one line of a process's output, or a lifecycle line siteplex
// wrote ("starting: …", "exited with status 1").
type LogLine struct {
	Time   time.Time `json:"time"`
	Site   string    `json:"site"` // slug; SingleSlug in single mode
	Text   string    `json:"text"`
	Stderr bool      `json:"stderr,omitempty"`
	// System marks lines siteplex itself wrote.
	System bool `json:"system,omitempty"`
}

// EventKind says what an Event carries.
type EventKind int

const (
	// EventState: a site's process changed state; Site holds the new status.
	EventState EventKind = iota
	// EventLog: a process wrote a line; Log holds it.
	EventLog
	// EventError: something failed in the background (Err); the
	// supervisor goes on.
	EventError
)

// Event is what the supervisor reports to the function given to New.
type Event struct {
	Kind EventKind
	Site SiteStatus
	Log  LogLine
	Err  error
}

// Config configures a Supervisor. Zero values take the defaults above.
type Config struct {
	// Project is the project whose processes run (root, env file,
	// .siteplex folder); nil runs them in the working folder without pid
	// or log files.
	Project *sites.Project
	// Mode is PerSite or Single; "" = DefaultMode.
	Mode Mode
	// BootTimeout bounds the wait for a starting process; 0 =
	// DefaultBootTimeout.
	BootTimeout time.Duration
	// IdleTimeout stops a process without requests for that long; 0 =
	// DefaultIdleTimeout, IdleNever (any negative value) = never.
	IdleTimeout time.Duration
	// MaxRunning is the most processes at once; 0 = no limit.
	MaxRunning int
	// Command is the argv template with {port}, {site_id}, {slug},
	// {domain}, {root}; nil = the project's process.command, else
	// <python> manage.py runserver 127.0.0.1:{port} --noreload.
	Command []string
	// Runner starts processes; nil = LocalRunner().
	Runner Runner
	// Watch restarts the running processes when *.py files change.
	Watch bool
	// Python is the interpreter of the default command ("" = the first of
	// .venv/bin/python, venv/bin/python, python3); the engine passes the
	// project's (--python, the config key python, the same search).
	Python string
	// ProcessEnv, when set, is asked for each process start for
	// environment entries (KEY=VALUE) applied last, over the env file,
	// [process] env and the site's env: the engine's overlay
	// (docs/django.md, "The overlay"). lookup reads the environment built
	// so far. nil adds nothing.
	ProcessEnv func(site sites.Site, single bool, forcedID int64, lookup func(key string) (string, bool)) ([]string, error)
	// Preload forks per-site processes from a warm Django parent
	// (docs/preload.md) when it applies: per-site mode, the local runner
	// and `<python> manage.py runserver 127.0.0.1:{port} --noreload` as the
	// command. Otherwise processes start the plain way and Preload()
	// says why.
	Preload bool
}

// WithDefaults returns c with every zero value replaced by its default.
// It does not check Mode; New does.
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = DefaultMode
	}
	if c.BootTimeout <= 0 {
		c.BootTimeout = DefaultBootTimeout
	}
	switch {
	case c.IdleTimeout == 0:
		c.IdleTimeout = DefaultIdleTimeout
	case c.IdleTimeout < 0:
		c.IdleTimeout = IdleNever
	}
	if c.Runner == nil {
		c.Runner = LocalRunner()
	}
	return c
}

// ProcessSpec is what a Runner needs to start one site's process.
type ProcessSpec struct {
	Site sites.Site
	// Port is the port the process must listen on (on 127.0.0.1 for local
	// processes; published on 127.0.0.1 for containers).
	Port int
	// Argv has its placeholders substituted already.
	Argv []string
	// Env is the complete environment (KEY=VALUE).
	Env []string
	Dir string
	// Stdout and Stderr receive the process's output.
	Stdout, Stderr io.Writer
	// Single is true in single mode (one process for every site).
	Single bool
}

// Runner starts site processes: local processes by default, containers
// with the docker runner (package compose).
type Runner interface {
	Start(ctx context.Context, spec ProcessSpec) (Proc, error)
}

// Proc is a started process.
type Proc interface {
	// PID is the process id (0 when not meaningful, e.g. a container).
	PID() int
	// Addr is host:port to proxy to.
	Addr() string
	// Wait blocks until the process exits and returns its exit code.
	Wait() (code int, err error)
	// Stop ends the process: SIGTERM to its group (or container stop),
	// then SIGKILL after grace. It returns when the process is gone.
	Stop(ctx context.Context, grace time.Duration) error
}
