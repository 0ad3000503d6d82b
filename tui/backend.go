// Package tui is siteplex's terminal UI (docs/tui.md): a bubbletea
// program showing the project's sites, their processes, hosts entries,
// logs and requests, over the engine of package devproxy (in process, or
// that of a running `siteplex serve`).
//
// The Model has no side effects: the engine, the hosts file, the env file
// and the browser are reached through the small interfaces and functions
// of Options, always from tea.Cmds that return named messages. Engine
// events arrive through a wait-for-event Cmd that Update re-issues, with
// every event already queued coalesced into one message.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"time"

	"github.com/charmbracelet/lipgloss"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// Engine is what the UI needs of *devproxy.Engine, or of a
// *devproxy.Remote when it attaches to the engine of a running `siteplex
// serve`. Tests use a fake. Every method may block briefly; the UI only
// calls them from tea.Cmds.
type Engine interface {
	// Start binds the proxy and starts serving. It may be called again
	// after it failed (the UI retries).
	Start(ctx context.Context) error
	Addrs() []string
	Status() devproxy.Status
	// Subscribe returns the stream of the given kinds of events (all when
	// none is given) and a function that ends it.
	Subscribe(kinds ...devproxy.EventKind) (<-chan devproxy.Event, func())
	StartSite(ctx context.Context, slug string) error
	StopSite(ctx context.Context, slug string) error
	RestartSite(ctx context.Context, slug string) error
	// Use switches the engine's forced site (the env file is written by
	// Options.WriteForced).
	Use(ctx context.Context, siteID int64) error
	Reload(ctx context.Context) error
	Sites() []sites.Site
	Logs(slug string, n int) []devproxy.LogLine
	Requests(n int) []devproxy.RequestRecord
}

// HostsState says which of a site's names are in the hosts file block.
type HostsState uint8

const (
	// HostsUnknown: not known (yet), or the hosts file could not be read.
	HostsUnknown HostsState = iota
	// HostsNone: none of the site's names are in the block.
	HostsNone
	// HostsSome: some of them are.
	HostsSome
	// HostsAll: all of them are.
	HostsAll
	// HostsNA: the site can never be written (it has problems).
	HostsNA
)

// Hosts manages the project's block in the hosts file. A nil Hosts in
// Options disables the hosts column and keys.
type Hosts interface {
	// Path is the hosts file's path, for messages.
	Path() string
	// Status says, per site id, which of its names are in the block.
	Status(ctx context.Context, list []sites.Site) (map[int64]HostsState, error)
	// Apply adds the names of the sites with the given slugs (nil: every
	// site) to the block.
	Apply(ctx context.Context, list []sites.Site, slugs []string) error
	// Remove takes the sites with the given slugs out of the block (nil:
	// the whole block).
	Remove(ctx context.Context, list []sites.Site, slugs []string) error
}

// PermissionError is returned by Hosts when the file needs root: the UI
// then suspends itself and runs Command (e.g. `sudo siteplex hosts apply
// gh`) in the terminal, and comes back when it ends.
type PermissionError struct {
	Command []string
	Err     error
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("%v (run: %s)", e.Err, strings.Join(e.Command, " "))
}

func (e *PermissionError) Unwrap() error { return e.Err }

// Options configure the UI. Engine is required; the rest may be zero.
type Options struct {
	Engine Engine
	// Hosts manages the hosts file entries; nil = not available.
	Hosts Hosts
	// Project is the project's name, Database a short description of
	// where the sites come from ("sqlite db.sqlite3", "postgres
	// 127.0.0.1:5432/app").
	Project, Database string
	// Mode is the engine's process mode, shown in the header.
	Mode devproxy.Mode
	// WriteForced writes SITE_ID=id into the env file (id 0 removes it).
	// nil = only the engine is told.
	WriteForced func(ctx context.Context, id int64) error
	// OpenURL opens url in a browser without waiting for it. nil = the
	// `o` key says it is not available.
	OpenURL func(ctx context.Context, url string) error
	// HTTPSPermits says whether the local CA may sign a name: site URLs
	// use https only for those, when the engine serves HTTPS. nil = every
	// name.
	HTTPSPermits func(name string) bool
	// Renderer renders styles; nil = lipgloss's default renderer (which
	// honours NO_COLOR).
	Renderer *lipgloss.Renderer
	// Context bounds every command the UI runs; nil = Background.
	Context context.Context
	// RetryEvery is how often a failed start or load is retried (default 3s).
	RetryEvery time.Duration
	// Now is the clock (nil = time.Now). Tests pin it.
	Now func() time.Time
	// NoTick turns off the once-a-second refresh (tests with fixed views).
	NoTick bool
	// NoStart skips Engine.Start (the caller started it).
	NoStart bool
	// Attached, when not empty, says the engine runs in another process
	// (`siteplex serve`) and names it for the header ("serve pid 4242").
	// Quitting then leaves its processes running and does not ask.
	Attached string
	// Notice is shown in the status line until something replaces it.
	Notice string
}

// ListenHelp returns the ways out for a proxy that could not bind
// (docs/engine.md, docs/https.md), or nil when err is not about a port
// siteplex could not bind.
func ListenHelp(err error) []string {
	var le *devproxy.ListenError
	if errors.As(err, &le) {
		var out []string
		for i, w := range le.WaysOut("siteplex") {
			if i == 0 && errors.Is(err, syscall.EADDRINUSE) {
				out = append(out, "stop what holds the port (ss -ltnp shows it), or")
			}
			out = append(out, w.Command)
		}
		return out
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrPermission), errors.Is(err, syscall.EACCES):
		return []string{
			"sudo setcap cap_net_bind_service=+ep $(which siteplex)",
			"sudo sysctl net.ipv4.ip_unprivileged_port_start=80",
			"siteplex --listen 127.0.0.1:8080",
		}
	case errors.Is(err, syscall.EADDRINUSE):
		return []string{
			"stop what holds the port (ss -ltnp shows it), or",
			"siteplex --listen 127.0.0.1:8080",
		}
	}
	return nil
}
