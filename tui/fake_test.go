package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// fakeEngine is the Engine the UI tests drive: it keeps sites and states
// in memory and publishes events like the real one.
type fakeEngine struct {
	mu       sync.Mutex // guards everything below
	list     []sites.Site
	status   map[string]devproxy.SiteStatus
	forced   int64
	addrs    []string
	https    []string
	startErr error
	loadErr  error
	subs     []chan devproxy.Event
	logs     map[string][]devproxy.LogLine
	reqs     []devproxy.RequestRecord
	calls    []string
	now      time.Time
	// startDelay is how long a started site stays "starting".
	startDelay time.Duration
	pid        int
}

func newFakeEngine(list []sites.Site) *fakeEngine {
	e := &fakeEngine{list: list, status: map[string]devproxy.SiteStatus{}, logs: map[string][]devproxy.LogLine{},
		addrs: []string{"127.0.0.1:8080"}, now: fixedNow, pid: 4000}
	for _, s := range list {
		e.status[s.Slug] = devproxy.SiteStatus{ID: s.ID, Slug: s.Slug, Domain: s.Domain, State: devproxy.Stopped}
		if s.Forced {
			e.forced = s.ID
		}
	}
	return e
}

var fixedNow = time.Date(2026, 11, 25, 19, 2, 11, 0, time.UTC)

func (e *fakeEngine) call(s string) {
	e.calls = append(e.calls, s)
}

func (e *fakeEngine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.calls...)
}

func (e *fakeEngine) publish(ev devproxy.Event) {
	for _, ch := range e.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (e *fakeEngine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.call("start")
	return e.startErr
}

func (e *fakeEngine) Addrs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.startErr != nil {
		return nil
	}
	return append([]string(nil), e.addrs...)
}

func (e *fakeEngine) Status() devproxy.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := devproxy.Status{Listen: e.addrs, HTTPS: e.https, Mode: devproxy.PerSite, ForcedSiteID: e.forced}
	if e.startErr != nil {
		st.Listen = nil
	}
	for _, s := range e.list {
		st.Sites = append(st.Sites, e.status[s.Slug])
	}
	return st
}

func (e *fakeEngine) Subscribe(...devproxy.EventKind) (<-chan devproxy.Event, func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := make(chan devproxy.Event, 1024)
	e.subs = append(e.subs, ch)
	return ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		for i, c := range e.subs {
			if c == ch {
				e.subs = append(e.subs[:i], e.subs[i+1:]...)
				close(ch)
				return
			}
		}
	}
}

func (e *fakeEngine) setState(slug string, state devproxy.State) {
	st := e.status[slug]
	st.State = state
	if state == devproxy.Stopped {
		st.PID, st.Port, st.StartedAt = 0, 0, time.Time{}
	}
	e.status[slug] = st
	e.publish(devproxy.Event{Kind: devproxy.EventState, Site: st})
}

func (e *fakeEngine) log(slug, text string, system bool) {
	l := devproxy.LogLine{Time: e.now, Site: slug, Text: text, System: system}
	e.now = e.now.Add(time.Second)
	e.logs[slug] = append(e.logs[slug], l)
	e.publish(devproxy.Event{Kind: devproxy.EventLog, Log: l})
}

func (e *fakeEngine) StartSite(ctx context.Context, slug string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.call("start " + slug)
	if _, ok := e.status[slug]; !ok {
		return fmt.Errorf("unknown site %q", slug)
	}
	e.pid++
	st := e.status[slug]
	st.PID, st.Port, st.StartedAt = e.pid, 41000+e.pid%1000, fixedNow.Add(-72*time.Second)
	e.status[slug] = st
	e.setState(slug, devproxy.Starting)
	e.log(slug, "starting: demo-site --port "+fmt.Sprint(st.Port), true)
	delay := e.startDelay
	go func() {
		time.Sleep(delay)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.log(slug, "Watching for file changes with StatReloader", false)
		e.log(slug, "Starting development server at http://127.0.0.1:"+fmt.Sprint(st.Port)+"/", false)
		e.setState(slug, devproxy.Running)
	}()
	return nil
}

func (e *fakeEngine) StopSite(ctx context.Context, slug string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.call("stop " + slug)
	e.log(slug, "stopped", true)
	e.setState(slug, devproxy.Stopped)
	return nil
}

func (e *fakeEngine) RestartSite(ctx context.Context, slug string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.call("restart " + slug)
	st := e.status[slug]
	st.Restarts++
	e.status[slug] = st
	e.setState(slug, devproxy.Running)
	return nil
}

func (e *fakeEngine) Use(ctx context.Context, id int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.call(fmt.Sprintf("use %d", id))
	e.forced = id
	for i := range e.list {
		e.list[i].Forced = e.list[i].ID == id
	}
	e.publish(devproxy.Event{Kind: devproxy.EventSites})
	return nil
}

func (e *fakeEngine) Reload(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.call("reload")
	return e.loadErr
}

func (e *fakeEngine) Sites() []sites.Site {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.loadErr != nil {
		return nil
	}
	return append([]sites.Site(nil), e.list...)
}

func (e *fakeEngine) Logs(slug string, n int) []devproxy.LogLine {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.logs[slug]
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return append([]devproxy.LogLine(nil), l...)
}

func (e *fakeEngine) Requests(n int) []devproxy.RequestRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.reqs
	if len(r) > n {
		r = r[len(r)-n:]
	}
	return append([]devproxy.RequestRecord(nil), r...)
}

// request records a proxied request like the engine's proxy does.
func (e *fakeEngine) request(slug, method, path string, status int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := devproxy.RequestRecord{Time: e.now, Site: slug, Method: method, Path: path, Status: status,
		Duration: 12 * time.Millisecond, Bytes: 4100}
	e.reqs = append(e.reqs, r)
	st := e.status[slug]
	st.Requests++
	e.status[slug] = st
	e.publish(devproxy.Event{Kind: devproxy.EventRequest, Request: r})
}

// fakeHosts keeps the project's block in a real (temporary) file, one
// "127.0.0.1 name" line per name, between markers.
type fakeHosts struct {
	path    string
	denied  bool // every write fails with a *PermissionError
	project string
	// command is the PermissionError's command (nil: a harmless one).
	command []string
}

func (h *fakeHosts) Path() string { return "the test hosts file" }

func (h *fakeHosts) read() (outside []string, names map[string]bool, err error) {
	b, err := os.ReadFile(h.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	names = map[string]bool{}
	in := false
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		switch {
		case l == "# siteplex begin "+h.project:
			in = true
		case l == "# siteplex end "+h.project:
			in = false
		case in:
			f := strings.Fields(l)
			if len(f) == 2 {
				names[f[1]] = true
			}
		case l != "":
			outside = append(outside, l)
		}
	}
	return outside, names, nil
}

func (h *fakeHosts) write(outside []string, names map[string]bool) error {
	lines := append([]string(nil), outside...)
	if len(names) > 0 {
		var ns []string
		for n := range names {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		lines = append(lines, "# siteplex begin "+h.project)
		for _, n := range ns {
			lines = append(lines, "127.0.0.1 "+n)
		}
		lines = append(lines, "# siteplex end "+h.project)
	}
	return os.WriteFile(h.path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func (h *fakeHosts) Status(ctx context.Context, list []sites.Site) (map[int64]HostsState, error) {
	_, names, err := h.read()
	if err != nil {
		return nil, err
	}
	out := map[int64]HostsState{}
	for _, s := range list {
		switch {
		case !s.Usable():
			out[s.ID] = HostsNA
		case names[sites.StripPort(s.Domain)]:
			out[s.ID] = HostsAll
		default:
			out[s.ID] = HostsNone
		}
	}
	return out, nil
}

func (h *fakeHosts) change(list []sites.Site, slugs []string, add bool) error {
	if h.denied {
		verb := "remove"
		if add {
			verb = "apply"
		}
		cmd := h.command
		if cmd == nil {
			cmd = append([]string{"true", "siteplex", "hosts", verb}, slugs...)
		}
		return &PermissionError{Command: cmd,
			Err: fmt.Errorf("open %s: %w", h.path, os.ErrPermission)}
	}
	outside, names, err := h.read()
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range slugs {
		want[s] = true
	}
	for _, s := range list {
		if !s.Usable() || (slugs != nil && !want[s.Slug]) {
			continue
		}
		if add {
			names[sites.StripPort(s.Domain)] = true
		} else {
			delete(names, sites.StripPort(s.Domain))
		}
	}
	if !add && slugs == nil {
		names = nil
	}
	return h.write(outside, names)
}

func (h *fakeHosts) Apply(ctx context.Context, list []sites.Site, slugs []string) error {
	return h.change(list, slugs, true)
}

func (h *fakeHosts) Remove(ctx context.Context, list []sites.Site, slugs []string) error {
	return h.change(list, slugs, false)
}

// demoSites is the site list of the tests (and the shape of the demo's).
func demoSites() []sites.Site {
	rd := "www.example.gh"
	plus := func(id int64, name, domain, slug string, enabled bool) sites.Site {
		return sites.Site{ID: id, Name: name, Domain: domain, PlusRow: true, PlusSlug: slug, Enabled: enabled}
	}
	gh := plus(2, "Ghana", "example.gh", "gh", true)
	gh.RealDomain = &rd
	gh.Aliases, gh.CanonicalAlias = []string{"example.gh", "gh.example-stage.eu"}, "example.gh"
	list := []sites.Site{
		plus(1, "Germany", "example.de", "de", true),
		gh,
		plus(3, "USA", "example.us", "us", true),
		{ID: 4, Name: "Port Site", Domain: "example.org:8000"},
		plus(5, "Injected", "evil.example\n127.0.0.1 bank.com", "evil", true),
		plus(6, "Archive", "archive.example.com", "archive", false),
		plus(7, "France", "example.fr", "fr", true),
		plus(8, "Japan", "example.jp", "jp", true),
	}
	for i := range list {
		list[i].Source = sites.SourceDjangoSite
	}
	df, _ := sites.ParseDomainFormat("{slug}.localhost")
	sites.Finalize(list, df, 2)
	return list
}

func tempHosts(dir string) *fakeHosts {
	p := filepath.Join(dir, "hosts")
	_ = os.WriteFile(p, []byte("127.0.0.1 localhost\n::1 localhost\n"), 0o644)
	return &fakeHosts{path: p, project: "demo"}
}
