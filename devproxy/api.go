// Package devproxy is siteplex's engine: a Host-routing reverse proxy on
// net/http and httputil.ReverseProxy in front of the site processes that
// package supervisor runs, with the request records, the index page, the
// HTTP control API and .siteplex/engine.json. The terminal UI runs it in
// process, or attaches to one that `siteplex serve` runs (Remote). What it
// does is described in docs/engine.md.
package devproxy

import (
	"context"
	"io"
	"time"

	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/sites"
)

// The supervisor's types that are part of the engine's own API (Status,
// Event), under the names the engine has always used.
type (
	Mode       = supervisor.Mode
	State      = supervisor.State
	SiteStatus = supervisor.SiteStatus
	Identity   = supervisor.Identity
	LogLine    = supervisor.LogLine
)

// PreloadStatus is Status.Preload (docs/preload.md).
type PreloadStatus = supervisor.PreloadStatus

const (
	PerSite  = supervisor.PerSite
	Single   = supervisor.Single
	Stopped  = supervisor.Stopped
	Starting = supervisor.Starting
	Running  = supervisor.Running
	Crashed  = supervisor.Crashed
	Backoff  = supervisor.Backoff
	// SingleSlug is the Site of the log lines of single mode's one process.
	SingleSlug = supervisor.SingleSlug
	// PreloadLog is the Site of the warm parents' log lines (--preload).
	PreloadLog = supervisor.PreloadLog
)

// Status is a snapshot of the engine (GET /api/status).
type Status struct {
	// PID is the engine's process id.
	PID    int      `json:"pid"`
	Listen []string `json:"listen"`
	// HTTPS are the HTTPS listen addresses ([] when HTTPS is off).
	HTTPS        []string     `json:"https"`
	Mode         Mode         `json:"mode"`
	ForcedSiteID int64        `json:"forced_site_id"`
	Sites        []SiteStatus `json:"sites"`
	// Preload is set when preload was asked for (--preload, preload =
	// true): whether it applies, the warm parent, why sites start the
	// plain way (docs/preload.md).
	Preload *PreloadStatus `json:"preload,omitempty"`
	// SitesError is why the last read of the sites failed, and that the
	// engine tries again ("" when it worked). Until a read works the
	// engine knows no site; after one, it routes the sites it read last.
	SitesError string `json:"sites_error,omitempty"`
}

// RequestRecord is one proxied request (docs/engine.md, "Request records").
type RequestRecord struct {
	Time     time.Time     `json:"time"`
	Site     string        `json:"site"` // slug
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

// eventKindNames are the names of the kinds in the event stream
// (GET /api/events), indexed by EventKind.
var eventKindNames = [...]string{EventState: "state", EventLog: "log", EventRequest: "request", EventSites: "sites", EventError: "error"}

// String is the kind's name in the event stream.
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(eventKindNames) {
		return eventKindNames[k]
	}
	return "unknown"
}

// Event is what subscribers of the engine receive.
type Event struct {
	Kind    EventKind
	Site    SiteStatus
	Log     LogLine
	Request RequestRecord
	Err     error
}

// Config configures an Engine. Zero values take the defaults
// (supervisor.Config.WithDefaults; listen 127.0.0.1:80 and [::1]:80).
type Config struct {
	// Config is the supervisor's part: project, mode, timeouts, command,
	// runner, code watching.
	supervisor.Config
	// LoadSites re-reads the sites (at Start, every few seconds and on
	// Reload); nil = no sites.
	LoadSites func(ctx context.Context) ([]sites.Site, error)
	// Listen addresses; default 127.0.0.1:80 and [::1]:80.
	Listen []string
	// HTTPS turns on the HTTPS listeners (docs/https.md); nil = plain
	// HTTP only.
	HTTPS *HTTPSConfig
	// StartAll starts every enabled site at once instead of lazily.
	StartAll bool
	// Log receives siteplex's own diagnostics (nil = discard).
	Log io.Writer
	// RewriteHost is rewrite_host: when the local names of a site go
	// upstream as its canonical host ("" = auto; docs/engine.md, "Host
	// rewriting").
	RewriteHost RewriteHost
	// NoOverlay, when not empty, says why the processes run without the
	// overlay (and are not probed): the docker runner, say.
	NoOverlay string
	// Kind is what runs the engine (KindServe, KindUI), recorded in
	// engine.json so that another siteplex names it right; "" = unsaid.
	Kind string
}
