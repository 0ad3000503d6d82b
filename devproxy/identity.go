package devproxy

// The overlay and the identity probe in the engine (docs/engine.md,
// "Identity"; what the overlay changes is in docs/django.md). At Start the
// engine writes the project's overlay settings module and makes one
// secret; every process it starts gets the overlay's environment, and once
// a process is ready the engine asks it, once per name form, which site it
// serves. The verdict goes into the status, the API, the index and error
// pages, and serve's stderr.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/sites/django"
)

// identitySetup is what Start decided about the overlay; it does not
// change afterwards.
type identitySetup struct {
	// overlay is nil when the processes run without it; none says why.
	overlay *django.Overlay
	none    string
	mode    django.Mode
	secret  string
	// secretHeader is secret as a header value.
	secretHeader []string
	info         *django.Info
	rewrite      RewriteHost
	// database says which database siteplex reads and which one Django's
	// settings name, for a probe that finds other domains ("" unknown).
	database string
	// noProbe is why a process cannot run the overlay, when known
	// (manage.py assigns DJANGO_SETTINGS_MODULE); "" otherwise.
	noProbe string
}

// maxSingleProbes bounds how many sites single mode's one process is
// probed for when it starts; the others are probed on demand
// (Engine.ProbeSite, POST /api/sites/<slug>/probe).
const maxSingleProbes = 50

// probeTimeout bounds one probe request (Django's first request imports
// the project's URLs and views).
const probeTimeout = 30 * time.Second

// prober runs the identity probes and keeps their verdicts.
type prober struct {
	client *http.Client
	// sem bounds the probes running at once.
	sem chan struct{}

	// mu guards verdicts, closed and the use of wg.Add.
	mu       sync.Mutex
	verdicts map[string]*supervisor.Identity // by slug
	closed   bool
	// lastPID is single mode's process last probed.
	lastPID int
	wg      sync.WaitGroup
}

func newProber() *prober {
	return &prober{
		client: &http.Client{
			// Straight to the process: no proxy from the environment, no
			// kept-alive connection left behind, no redirect followed.
			Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true, DisableCompression: true},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       probeTimeout,
		},
		sem:      make(chan struct{}, 4),
		verdicts: map[string]*supervisor.Identity{},
	}
}

// verdict returns a copy of slug's verdict, or nil.
func (p *prober) verdict(slug string) *supervisor.Identity {
	p.mu.Lock()
	defer p.mu.Unlock()
	if v := p.verdicts[slug]; v != nil {
		c := *v
		return &c
	}
	return nil
}

func (p *prober) set(slug string, v supervisor.Identity) {
	p.mu.Lock()
	p.verdicts[slug] = &v
	p.mu.Unlock()
}

// start marks slug as being probed for pid and reports whether a probe
// should run (none ran or runs for that pid yet, the prober is open).
func (p *prober) start(slug string, pid int, force bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if v := p.verdicts[slug]; v != nil && v.PID == pid && !force {
		return false
	}
	p.verdicts[slug] = &supervisor.Identity{Detail: "probing…", PID: pid}
	p.wg.Add(1)
	return true
}

// newProcess reports whether pid is a single-mode process not seen
// before (its sites are then probed).
func (p *prober) newProcess(pid int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pid == 0 || pid == p.lastPID {
		return false
	}
	p.lastPID = pid
	return true
}

// close stops new probes and waits for the running ones.
func (p *prober) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}

// setupIdentity decides at Start whether the processes get the overlay,
// writes it and makes the engine's secret. Without a Django project
// (no manage.py, settings that cannot be read, the docker runner) there
// is no overlay: the status says why, and nothing is probed.
func (e *Engine) setupIdentity(ctx context.Context) {
	s := &identitySetup{rewrite: e.cfg.RewriteHost}
	p := e.cfg.Project
	switch {
	case p == nil:
		s.none = "no project"
	case e.cfg.NoOverlay != "":
		s.none = e.cfg.NoOverlay
	case !p.IsDjango:
		s.none = "not a Django project (no manage.py in " + p.Root + ")"
	}
	if s.none == "" {
		rep, err := p.DjangoReport(ctx)
		if err == nil {
			s.info = rep.Info
			s.overlay, err = p.WriteOverlay(ctx)
			s.database = databaseNote(ctx, p, rep.Info)
			if g := rep.Guess; g.ManagePyAssigns {
				s.noProbe = fmt.Sprintf("manage.py sets DJANGO_SETTINGS_MODULE itself, so siteplex's overlay cannot load: change os.environ[\"DJANGO_SETTINGS_MODULE\"] = %q to os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", %q) in manage.py", g.Module, g.Module)
			}
		}
		switch {
		case err != nil && sites.IsNoDjango(err):
			s.none = "no Django to ask (" + err.Error() + "); " + sites.PythonFix
		case err != nil:
			s.none = "Django's settings could not be read (" + err.Error() + ")"
		}
	}
	if s.overlay != nil {
		secret, err := django.NewSecret()
		if err != nil {
			s.overlay, s.none = nil, "making the probe's secret: "+err.Error()
		} else {
			s.secret, s.secretHeader = secret, []string{secret}
			switch {
			case !p.OverlayEnabled():
				s.mode = django.ProbeOnly
			case e.cfg.Mode == Single:
				s.mode = django.Single
			default:
				s.mode = django.PerSite
			}
		}
	}
	if s.overlay == nil && p != nil {
		fmt.Fprintf(e.cfg.Log, "siteplex: no overlay and no identity check: %s\n", s.none)
	}
	e.ident.Store(s)
}

// databaseNote says which database siteplex reads its sites from and,
// when that is not the settings' own, which one DATABASES['default']
// names: "siteplex reads sqlite /p/other.db (from --db); Django's
// DATABASES['default'] is django.db.backends.sqlite3 /p/db.sqlite3".
func databaseNote(ctx context.Context, p *sites.Project, info *django.Info) string {
	db, ok, err := p.DatabaseSourceContext(ctx)
	if err != nil || !ok {
		return ""
	}
	note := "siteplex reads " + db.Display() + " (from " + db.Source + ")"
	if d, ok := info.Databases["default"]; ok && !strings.HasPrefix(db.Source, "DATABASES['default']") {
		note += "; Django's DATABASES['default'] is " + d.String()
	}
	return note
}

// djangoSite reports whether s is a django_site row (or a site declared
// in siteplex.toml), whose id is a SITE_ID.
func djangoSite(s *sites.Site) bool {
	switch s.Source {
	case sites.SourceWagtail, sites.SourceTenants, sites.SourcePGSchemas:
		return false
	}
	return true
}

// routeOpts are the routing table's per-site additions for the current
// set-up: the canonical host of local names, and single mode's header.
func (e *Engine) routeOpts() routeOpts {
	s := e.ident.Load()
	if s == nil {
		return routeOpts{}
	}
	o := routeOpts{upstream: func(site *sites.Site) string { return upstreamFor(s.rewrite, site, s.info) }}
	if s.overlay != nil && s.mode == django.Single {
		o.siteHeader = djangoSite
	}
	return o
}

// processEnv is the supervisor's ProcessEnv: the overlay's environment
// for one process (docs/django.md, "The process environment").
func (e *Engine) processEnv(site sites.Site, single bool, forced int64, lookup func(string) (string, bool)) ([]string, error) {
	s := e.ident.Load()
	if s == nil || s.overlay == nil {
		return nil, nil
	}
	t := e.table.Load()
	po := django.ProcessOverlay{Mode: s.mode, Secret: s.secret, Key: site.Slug}
	po.PythonPath, _ = lookup("PYTHONPATH")
	if single {
		po.Key = supervisor.SingleSlug
		if rt := t.byID[forced]; rt != nil && djangoSite(rt.site) {
			po.SiteID = forced
		}
		for i := range t.all {
			if rt := t.bySlug[t.all[i].Slug]; rt != nil && rt.site == &t.all[i] {
				po.AllowedHosts, po.CanonicalHosts = appendNames(po.AllowedHosts, po.CanonicalHosts, rt)
			}
		}
	} else {
		if djangoSite(&site) {
			po.SiteID = site.ID
		}
		if rt := t.bySlug[site.Slug]; rt != nil {
			po.AllowedHosts, po.CanonicalHosts = appendNames(nil, nil, rt)
		}
	}
	po.AllowedHosts = append(po.AllowedHosts, "localhost", "127.0.0.1", "[::1]")
	env, err := s.overlay.ProcessEnv(po)
	if err != nil {
		return nil, err
	}
	// A site's own settings module ([sites.<slug>] env) is the one the
	// overlay imports.
	if v, ok := lookup("DJANGO_SETTINGS_MODULE"); ok && v != "" && v != django.OverlayModule && v != s.overlay.SettingsModule {
		env = append(env, "SITEPLEX_PROJECT_SETTINGS="+v)
	}
	return env, nil
}

// appendNames adds the names routed to rt's site (its local domain and
// every subdomain, domain, aliases, real domain; wildcard aliases as
// Django's ".suffix") and its canonical host.
func appendNames(allowed, canonical []string, rt *siteRoute) ([]string, []string) {
	s := rt.site
	add := func(n string) {
		n = strings.ToLower(strings.TrimSpace(n))
		if sites.IsWildcard(n) {
			name, _ := splitHostPort(n)
			if !strings.HasPrefix(name, "*.") {
				return
			}
			n = name[1:]
		}
		if n != "" && !slices.Contains(allowed, n) {
			allowed = append(allowed, n)
		}
	}
	if s.LocalDomain != "" {
		add("." + s.LocalDomain)
	}
	add(s.Domain)
	for _, a := range s.Aliases {
		add(a)
	}
	if s.RealDomain != nil {
		add(*s.RealDomain)
	}
	if up := rt.local.upstream; up != "" && !slices.Contains(canonical, up) {
		canonical = append(canonical, up)
	}
	return allowed, canonical
}

// probeForm is one name form a site is reached by: the Host the browser
// sends, the Host that goes upstream and the site header.
type probeForm struct {
	browser, upstream string
	siteHeader        []string
}

// nameForms are the forms a site is probed on: its local domain, its
// domain when it routes to it, and localhost when localhost routes to it.
func nameForms(t *routeTable, site *sites.Site) []probeForm {
	rt := t.bySlug[site.Slug]
	if rt == nil {
		return nil
	}
	form := func(browser string, r *siteRoute) probeForm {
		up := r.upstream
		if up == "" {
			up = browser
		}
		return probeForm{browser: browser, upstream: up, siteHeader: r.siteHeader}
	}
	var out []probeForm
	if site.LocalDomain != "" {
		out = append(out, form(site.LocalDomain, rt))
	}
	var buf [256]byte
	if h, ok := normHost(site.Domain, &buf); ok {
		if kind, r := t.lookup(site.Domain); kind == toSite && r.site == site {
			out = append(out, form(strings.Clone(h), r))
		}
	}
	if t.forcedRoute != nil && t.forcedRoute.site == site {
		out = append(out, form("localhost", rt))
	}
	return out
}

// expect is what a probe on form must find for site.
func (s *identitySetup) expect(site *sites.Site, host string) django.Expect {
	want := django.Expect{Host: host, NoProbe: s.noProbe}
	switch site.Source {
	case sites.SourceWagtail:
		want.WagtailSiteID = site.ID
	case sites.SourceTenants, sites.SourcePGSchemas:
		want.Schema = site.Schema
	default:
		if s.info == nil || s.info.Frameworks.Sites || s.info.Frameworks.Mezzanine || s.info.Frameworks.Multisite {
			want.SiteID = site.ID
			if site.Source == sites.SourceDjangoSite {
				// A row siteplex read: Django must find the same domain
				// for that id (a declared site's domain is siteplex's).
				want.Domain, want.Database = site.Domain, s.database
			}
		}
	}
	return want
}

// scheduleProbe probes slug's process in the background when it is ready
// and was not probed yet (force: again).
func (e *Engine) scheduleProbe(slug string, force bool) bool {
	s := e.ident.Load()
	if s == nil || s.overlay == nil || e.runCtx == nil {
		return false
	}
	_, pid, ok := e.sup.Running(slug)
	if !ok || !e.probes.start(slug, pid, force) {
		return false
	}
	go func() {
		defer e.probes.wg.Done()
		select {
		case e.probes.sem <- struct{}{}:
		case <-e.runCtx.Done():
			return
		}
		defer func() { <-e.probes.sem }()
		e.probeSite(e.runCtx, slug, pid)
	}()
	return true
}

// probeSite probes slug's process pid on every name form and publishes
// the verdict.
func (e *Engine) probeSite(ctx context.Context, slug string, pid int) {
	s := e.ident.Load()
	t := e.table.Load()
	rt := t.bySlug[slug]
	addr, nowPID, ok := e.sup.Running(slug)
	if rt == nil || !ok || nowPID != pid {
		e.probes.set(slug, supervisor.Identity{Detail: "not probed: the process stopped first", PID: pid})
		return
	}
	forms := nameForms(t, rt.site)
	var (
		oks   []string
		fails []string
	)
	for _, f := range forms {
		want := s.expect(rt.site, f.browser)
		v := e.probeOnce(ctx, s, addr, f, want)
		if ctx.Err() != nil {
			return
		}
		if v.OK {
			oks = append(oks, f.browser)
		} else {
			fails = append(fails, v.Message)
		}
	}
	id := supervisor.Identity{Checked: true, OK: len(fails) == 0 && len(oks) > 0, PID: pid, At: time.Now()}
	switch {
	case len(forms) == 0:
		id.Checked, id.Detail = false, "not probed: the site has no name that routes to it"
	case id.OK:
		id.Detail = "✓ " + describeSite(rt.site, s) + " on " + strings.Join(oks, ", ")
		if rw := rt.local.upstream; rw != "" {
			id.Detail += " (sent as " + rw + ")"
		}
	default:
		// A wrong site says most: it goes first.
		slices.SortStableFunc(fails, func(a, b string) int {
			return boolRank(!strings.Contains(a, "serves ")) - boolRank(!strings.Contains(b, "serves "))
		})
		id.Detail = fails[0]
		if len(fails) > 1 {
			id.Detail += " · also " + fails[1]
		}
		if len(fails) > 2 {
			id.Detail += fmt.Sprintf(" (and %d more)", len(fails)-2)
		}
	}
	e.probes.set(slug, id)
	e.emitSiteState(slug)
	if id.Checked && !id.OK {
		e.emit(Event{Kind: EventError, Err: fmt.Errorf("%s: %s", slug, id.Detail)})
	}
}

// describeSite names what a probe checked: "site 3", "Wagtail site 2",
// "tenant acme".
func describeSite(site *sites.Site, s *identitySetup) string {
	want := s.expect(site, "")
	switch {
	case want.WagtailSiteID > 0:
		return fmt.Sprintf("Wagtail site %d", site.ID)
	case want.Schema != "":
		return "tenant " + want.Schema
	case want.SiteID > 0:
		return fmt.Sprintf("site %d", site.ID)
	}
	return "reachable"
}

// probeOnce sends one probe request to the process at addr.
func (e *Engine) probeOnce(ctx context.Context, s *identitySetup, addr string, f probeForm, want django.Expect) django.Verdict {
	var headerSite int64
	if len(f.siteHeader) == 1 {
		fmt.Sscan(f.siteHeader[0], &headerSite)
	}
	req, err := django.NewProbeRequest(ctx, "http://"+addr, f.upstream, s.secret, headerSite)
	if err != nil {
		return django.Verdict{Message: "✗ probing " + f.browser + ": " + err.Error()}
	}
	if f.upstream != f.browser {
		req.Header.Set("X-Forwarded-Host", f.browser)
	}
	req.Header.Set("X-Forwarded-Proto", "http")
	resp, err := e.probes.client.Do(req)
	if err != nil {
		return django.Verdict{Message: fmt.Sprintf("✗ the identity probe on %s got no answer: %v", f.browser, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return django.Verdict{Message: fmt.Sprintf("✗ the identity probe on %s: reading the answer: %v", f.browser, err)}
	}
	return django.CheckResponse(want, resp.StatusCode, resp.Header, body)
}

// ProbeSite probes slug's running process again now and waits for the
// verdict (docs/engine.md, "Identity"). It fails when the site is not
// running or there is no overlay to probe.
func (e *Engine) ProbeSite(ctx context.Context, slug string) (supervisor.Identity, error) {
	site, err := e.findSite(slug)
	if err != nil {
		return supervisor.Identity{}, err
	}
	s := e.ident.Load()
	if s == nil || s.overlay == nil {
		why := "the engine has not started"
		if s != nil {
			why = s.none
		}
		return supervisor.Identity{}, errors.New("no identity check: " + why)
	}
	_, pid, ok := e.sup.Running(site.Slug)
	if !ok {
		return supervisor.Identity{}, fmt.Errorf("%s is not running: start it first", site.Slug)
	}
	if !e.probes.start(site.Slug, pid, true) {
		return supervisor.Identity{}, errors.New("siteplex is shutting down")
	}
	func() {
		defer e.probes.wg.Done()
		e.probeSite(ctx, site.Slug, pid)
	}()
	if v := e.probes.verdict(site.Slug); v != nil {
		return *v, ctx.Err()
	}
	return supervisor.Identity{}, ctx.Err()
}

// notRunning is the identity shown for a site whose probed process is no
// longer running.
const notRunning = "not checked: not running"

// identityOf is the verdict shown for a site: the probe's while the
// process it is about still runs, or why there is none. A verdict on a
// process that crashed, stopped or was replaced says so instead of
// passing for the current one.
func (e *Engine) identityOf(slug string) *supervisor.Identity {
	if v := e.probes.verdict(slug); v != nil {
		if v.PID == 0 {
			return v
		}
		_, pid, ok := e.sup.Running(slug)
		switch {
		case !ok:
			return &supervisor.Identity{Detail: notRunning}
		case pid != v.PID:
			return &supervisor.Identity{Detail: fmt.Sprintf("not checked yet: the process was restarted (pid %d)", pid)}
		}
		return v
	}
	s := e.ident.Load()
	switch {
	case s == nil:
		return nil
	case s.overlay == nil:
		return &supervisor.Identity{Detail: "no identity check: " + s.none}
	}
	return nil
}

// emitSiteState publishes slug's status again (its verdict changed).
func (e *Engine) emitSiteState(slug string) {
	for _, st := range e.sup.Statuses() {
		if st.Slug == slug {
			e.emit(Event{Kind: EventState, Site: st})
			return
		}
	}
}

// onStateEvent starts the probes a state change calls for: a process
// that became ready (per-site: its site; single mode: the forced site and
// the first maxSingleProbes sites, once per process).
func (e *Engine) onStateEvent(st SiteStatus) {
	if st.State != Running {
		return
	}
	if e.cfg.Mode != Single {
		e.scheduleProbe(st.Slug, false)
		return
	}
	if !e.probes.newProcess(st.PID) {
		return
	}
	t := e.table.Load()
	n := 0
	for i := range t.all {
		rt := t.bySlug[t.all[i].Slug]
		if rt == nil || rt.site != &t.all[i] {
			continue
		}
		if n < maxSingleProbes || rt == t.forcedRoute {
			e.scheduleProbe(rt.site.Slug, false)
			n++
			continue
		}
		e.probes.set(rt.site.Slug, supervisor.Identity{PID: st.PID,
			Detail: fmt.Sprintf("not probed yet (single mode probes %d sites when its process starts): POST /api/sites/%s/probe", maxSingleProbes, rt.site.Slug)})
	}
}
