// Package devproxy is siteplex's engine: a Host-routing reverse proxy in
// front of one dev process per site (or one shared process), with the
// supervisor that starts, reloads, restarts and stops those processes, and
// the HTTP control API. The terminal UI runs it in process; `siteplex
// serve` runs it headless.
package devproxy

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

// State is a site process's state, as shown in the UI and /api/status.
type State string

const (
	Stopped  State = "stopped"
	Starting State = "starting"
	Running  State = "running"
	Crashed  State = "crashed"
	Backoff  State = "backoff"
)

// SiteStatus is one site in a status snapshot (and in GET /api/status).
type SiteStatus struct {
	ID       int64  `json:"id"`
	Slug     string `json:"slug"`
	Domain   string `json:"domain"`
	State    State  `json:"state"`
	PID      int    `json:"pid"`
	Port     int    `json:"port"`
	Restarts int    `json:"restarts"`
	// LastExit is the exit code of the last exit, nil if it never exited.
	LastExit *int  `json:"last_exit_code"`
	Requests int64 `json:"requests"`
	// StartedAt is when the current process started (zero when stopped).
	StartedAt time.Time `json:"started_at,omitzero"`
	// BackoffUntil is when a crash-looping site may be started again.
	BackoffUntil time.Time `json:"backoff_until,omitzero"`
}

// Status is a snapshot of the engine (GET /api/status).
type Status struct {
	Listen       []string     `json:"listen"`
	Mode         Mode         `json:"mode"`
	ForcedSiteID int64        `json:"forced_site_id"`
	Sites        []SiteStatus `json:"sites"`
}

// LogLine is one line of a process's output, or a lifecycle line siteplex
// wrote ("starting: …", "exited with status 1").
type LogLine struct {
	Time   time.Time `json:"time"`
	Site   string    `json:"site"` // slug
	Text   string    `json:"text"`
	Stderr bool      `json:"stderr,omitempty"`
	// System marks lines siteplex itself wrote.
	System bool `json:"system,omitempty"`
}

// RequestRecord is one proxied request (SPEC §6.4).
type RequestRecord struct {
	Time     time.Time     `json:"time"`
	Site     string        `json:"site"` // slug; "" for the index
	Method   string        `json:"method"`
	Path     string        `json:"path"`
	Status   int           `json:"status"`
	Duration time.Duration `json:"duration_ns"`
	Bytes    int64         `json:"bytes"`
}

// EventKind says what an Event carries.
type EventKind int

const (
	// EventState: a site's process changed state; Site holds the new status.
	EventState EventKind = iota
	// EventLog: a process wrote a line; Log holds it.
	EventLog
	// EventRequest: a request was proxied; Request holds it.
	EventRequest
	// EventSites: the site list was re-read or the forced site changed.
	EventSites
	// EventError: something failed in the background (Err); the engine goes on.
	EventError
)

// Event is what subscribers of the engine receive.
type Event struct {
	Kind    EventKind
	Site    SiteStatus
	Log     LogLine
	Request RequestRecord
	Err     error
}

// Config configures an Engine. Zero values take the SPEC's defaults.
type Config struct {
	Project *sites.Project
	// LoadSites re-reads the sites (initially and on reload).
	LoadSites func(ctx context.Context) ([]sites.Site, error)
	// Listen addresses; default 127.0.0.1:80 and [::1]:80.
	Listen []string
	Mode   Mode
	// StartAll starts every enabled site at once instead of lazily.
	StartAll    bool
	BootTimeout time.Duration // default 60s
	IdleTimeout time.Duration // default 15m; negative = never (0 from the flag means never too)
	MaxRunning  int           // 0 = no limit
	// Command is the argv template with {port}, {site_id}, {slug}, {domain},
	// {root}; nil = <python> manage.py runserver 127.0.0.1:{port} --noreload.
	Command []string
	// Runner starts processes; nil = local processes.
	Runner Runner
	// Watch enables code reload on *.py changes (default on in serve/ui).
	Watch bool
	// Log receives siteplex's own diagnostics (nil = discard).
	Log io.Writer
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
// with the docker runner.
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
