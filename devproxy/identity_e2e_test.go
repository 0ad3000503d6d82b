package devproxy

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// hashProject hashes every file of a fixture project except what siteplex
// and Python write (.siteplex, __pycache__, the SQLite databases).
func hashProject(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".siteplex" || d.Name() == "__pycache__") {
			return filepath.SkipDir
		}
		if d.IsDir() || strings.HasSuffix(p, ".db") || strings.HasSuffix(p, ".sqlite3") || strings.HasSuffix(p, "-journal") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[p] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// fixtureEngine runs the real engine over project dir (its real sites, its
// own Django through /usr/bin/python3 and the default command).
func fixtureEngine(t *testing.T, dir string, mode Mode, noOverlay bool) *Engine {
	t.Helper()
	return optionsEngine(t, sites.Options{Project: dir, NoOverlay: noOverlay}, mode)
}

// optionsEngine is fixtureEngine for the project opts load (its Python is
// Debian's).
func optionsEngine(t *testing.T, opts sites.Options, mode Mode) *Engine {
	t.Helper()
	opts.Python = testenv.Python
	p, err := sites.Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Config: supervisor.Config{Project: p, Mode: mode, Python: testenv.Python, IdleTimeout: supervisor.IdleNever},
		LoadSites: projectSites(p), Listen: []string{"127.0.0.1:0"}, StartAll: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// projectSites reads p's sites from the database it names, as serve does.
func projectSites(p *sites.Project) func(ctx context.Context) ([]sites.Site, error) {
	return func(ctx context.Context) ([]sites.Site, error) {
		list, _, _, err := p.ReadSites(ctx, nil)
		return list, err
	}
}

func closeEngine(t *testing.T, e *Engine) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// waitIdentities waits until every routed site has a verdict and returns
// them by slug.
func waitIdentities(t *testing.T, e *Engine) map[string]*Identity {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for {
		st := e.Status()
		out := map[string]*Identity{}
		done := len(st.Sites) > 0
		for _, s := range st.Sites {
			out[s.Slug] = s.Identity
			if s.Identity == nil || !s.Identity.Checked {
				done = false
			}
		}
		if done {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no identity verdict for every site after 2 minutes: %+v\n%s", out, logsOf(e))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func logsOf(e *Engine) string {
	var b strings.Builder
	for _, s := range e.Status().Sites {
		for _, l := range e.Logs(s.Slug, 30) {
			b.WriteString(s.Slug + ": " + l.Text + "\n")
		}
	}
	return b.String()
}

// siteOf asks the fixture's /whoami/ through the proxy which SITE_ID
// served a request on host.
func siteOf(t *testing.T, addr, host string, hdr map[string]string) int64 {
	t.Helper()
	resp, b := pxGet(t, addr, host, "/whoami/", hdr)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /whoami/ on %s: HTTP %d\n%.400s", host, resp.StatusCode, b)
	}
	var w struct {
		SiteID int64 `json:"site_id"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("GET /whoami/ on %s: %v: %s", host, err, b)
	}
	return w.SiteID
}

// TestEngineOverlayFixtures runs the real engine with real Django 3.2
// runservers over each fixture project (hard-coded SITE_ID with
// ALLOWED_HOSTS ["localhost"], a settings package with no env file, an
// object-valued SITE_ID, django-multisite's lazy ALLOWED_HOSTS, the
// env-driven one): every Host form reaches its
// site in per-site and single mode, single mode serves every site from one
// process, the identity probe says ✓, and the settings files are
// untouched.
func TestEngineOverlayFixtures(t *testing.T) {
	for _, name := range []string{"djfixed", "djpackage", "djsiteid", "djmultisite", "django"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := testenv.DjangoFixture(t, name, name != "django")
			before := hashProject(t, dir)
			for _, mode := range []Mode{PerSite, Single} {
				t.Run(string(mode), func(t *testing.T) {
					e := fixtureEngine(t, dir, mode, false)
					defer closeEngine(t, e)
					addr := e.Addrs()[0]
					for slug, id := range waitIdentities(t, e) {
						if !id.OK || !strings.HasPrefix(id.Detail, "✓") {
							t.Errorf("%s: identity %+v\n%s", slug, id, logsOf(e))
						}
					}
					list := e.Sites()
					var routed []sites.Site
					for _, s := range list {
						if s.Usable() && s.Enabled {
							routed = append(routed, s)
						}
					}
					if len(routed) < 3 {
						t.Fatalf("routed sites: %+v", list)
					}
					for _, s := range routed {
						hosts := []string{s.LocalDomain, "static." + s.LocalDomain, strings.ToUpper(s.LocalDomain) + ":8080"}
						if sites.HostsName(s.Domain) {
							hosts = append(hosts, s.Domain)
						}
						hosts = append(hosts, s.Aliases...)
						for _, h := range hosts {
							if got := siteOf(t, addr, h, nil); got != s.ID {
								t.Errorf("Host %s: site %d, want %d", h, got, s.ID)
							}
						}
					}
					// localhost with a forced site, then the cookie override.
					last := routed[len(routed)-1]
					if err := e.Use(context.Background(), last.ID); err != nil {
						t.Fatal(err)
					}
					if got := siteOf(t, addr, "localhost", nil); got != last.ID {
						t.Errorf("localhost forced to %d: site %d", last.ID, got)
					}
					first := routed[0]
					if got := siteOf(t, addr, "localhost", map[string]string{"Cookie": cookieName + "=" + first.Slug}); got != first.ID {
						t.Errorf("localhost with the cookie for %s: site %d, want %d", first.Slug, got, first.ID)
					}
					// A client's own overlay headers change nothing.
					hdr := map[string]string{"X-Siteplex-Site": "1", "X-Siteplex-Secret": "guess"}
					if got := siteOf(t, addr, last.LocalDomain, hdr); got != last.ID {
						t.Errorf("client-sent X-Siteplex-Site: site %d, want %d", got, last.ID)
					}
					if mode == Single {
						pids := map[int]bool{}
						for _, s := range e.Status().Sites {
							pids[s.PID] = true
						}
						if len(pids) != 1 || pids[0] {
							t.Errorf("single mode: processes %v, want one", pids)
						}
					}
					// Probes are not requests.
					for _, r := range e.Requests(0) {
						if strings.Contains(r.Path, "__siteplex__") {
							t.Errorf("a probe was recorded as a request: %+v", r)
						}
					}
				})
			}
			if after := hashProject(t, dir); len(after) != len(before) {
				t.Errorf("files changed: %d before, %d after", len(before), len(after))
			} else {
				for p, h := range before {
					if after[p] != h {
						t.Errorf("%s changed", p)
					}
				}
			}
		})
	}
}

// TestEngineNoOverlayIsLoud: with the overlay off, the hard-coded
// SITE_ID fixture serves site 1 everywhere, and the identity says so.
func TestEngineNoOverlayIsLoud(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djfixed", true)
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte("SITE_ID=3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := fixtureEngine(t, dir, PerSite, true)
	defer closeEngine(t, e)
	ids := waitIdentities(t, e)
	var gamma *Identity
	for slug, id := range ids {
		if id.OK {
			t.Errorf("%s: %s with the overlay off", slug, id.Detail)
		}
		if strings.HasPrefix(slug, "gamma") {
			gamma = id
		}
	}
	if gamma == nil || !strings.Contains(gamma.Detail, "✗ serves site 1, expected 3, on localhost: settings ignore SITE_ID") {
		t.Errorf("forced site 3: %+v", gamma)
	}
	// The same verdict on the index page and the 502 page's source.
	resp, b := pxGet(t, e.Addrs()[0], IndexHost, "/", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "settings ignore SITE_ID") {
		t.Errorf("index page lacks the verdict: %s", b)
	}
}

// TestEngineSingleModeStreaming: `serve --mode single` over a project with
// SITE_ID = 1 and sites alpha (1), beta (2), gamma (3): a view that
// streams its answer (StreamingHttpResponse) sees the site of the Host it
// was asked on, as a plain view does, and the identity probe, which
// checks a streamed answer too, says ✓.
func TestEngineSingleModeStreaming(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djpackage", true)
	e := fixtureEngine(t, dir, Single, false)
	defer closeEngine(t, e)
	for slug, id := range waitIdentities(t, e) {
		if !id.OK {
			t.Errorf("%s: identity %s\n%s", slug, id.Detail, logsOf(e))
		}
	}
	addr := e.Addrs()[0]
	for _, s := range e.Sites() {
		for _, h := range []string{s.Domain, s.LocalDomain} {
			for _, path := range []string{"/whoami/", "/whoami/stream/"} {
				resp, b := pxGet(t, addr, h, path, nil)
				var w struct {
					SiteID      int64 `json:"site_id"`
					CurrentSite int64 `json:"current_site"`
				}
				if err := json.Unmarshal(b, &w); resp.StatusCode != 200 || err != nil {
					t.Fatalf("GET %s on %s: HTTP %d %v: %.300s", path, h, resp.StatusCode, err, b)
				}
				if w.SiteID != s.ID || w.CurrentSite != s.ID {
					t.Errorf("GET %s on %s: SITE_ID %d, current site %d, want %d", path, h, w.SiteID, w.CurrentSite, s.ID)
				}
			}
		}
	}
}

// TestEngineProbeSaysAnotherDatabase: siteplex reads a copy of the
// project's database whose site 2 has another domain (--db naming a stale
// copy): the ids agree, the domains do not, and the probe says ✗ with both
// domains and both databases.
func TestEngineProbeSaysAnotherDatabase(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djpackage", true)
	src, err := os.ReadFile(filepath.Join(dir, "var", "site.sqlite3"))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.sqlite3")
	if err := os.WriteFile(other, src, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", other)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE django_site SET domain = 'example.gh' WHERE id = 2"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	e := optionsEngine(t, sites.Options{Project: dir, DB: "sqlite:///" + other}, PerSite)
	defer closeEngine(t, e)
	ids := waitIdentities(t, e)
	for slug, id := range ids {
		switch {
		case slug == "example-gh":
			for _, want := range []string{"✗ site 2 is beta.example.com in the project's database but example.gh in the one siteplex reads",
				"siteplex probably reads another database than the project (siteplex reads sqlite " + other + " (from --db); Django's DATABASES['default'] is django.db.backends.sqlite3 " + filepath.Join(dir, "var", "site.sqlite3")} {
				if id.OK || !strings.Contains(id.Detail, want) {
					t.Errorf("%s: %s\nwant %q", slug, id.Detail, want)
				}
			}
		case !id.OK:
			t.Errorf("%s: %s", slug, id.Detail)
		}
	}
	if ids["example-gh"] == nil {
		t.Errorf("no verdict for site 2: %v", ids)
	}
}

// TestEngineManagePyAssignsIsLoud: manage.py assigns DJANGO_SETTINGS_MODULE
// (instead of setdefault), so no process loads the overlay: every site's
// identity is a ✗ that says so and gives the one-line change.
func TestEngineManagePyAssignsIsLoud(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djpackage", true)
	testenv.ManagePyAssigns(t, dir, "proj.settings.dev")
	e := fixtureEngine(t, dir, PerSite, false)
	defer closeEngine(t, e)
	want := `manage.py sets DJANGO_SETTINGS_MODULE itself, so siteplex's overlay cannot load: change os.environ["DJANGO_SETTINGS_MODULE"] = "proj.settings.dev" to os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings.dev") in manage.py`
	for slug, id := range waitIdentities(t, e) {
		if id.OK || !strings.HasPrefix(id.Detail, "✗ no identity probe on ") || !strings.Contains(id.Detail, want) {
			t.Errorf("%s: %s", slug, id.Detail)
		}
	}
}

// TestEngineIdentityOfStoppedProcess: a verdict is about one process.
// Once that process has stopped, or crashed and cannot start again, the
// status, the API and the error page no longer show its ✓.
func TestEngineIdentityOfStoppedProcess(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djpackage", true)
	e := fixtureEngine(t, dir, PerSite, false)
	defer closeEngine(t, e)
	for slug, id := range waitIdentities(t, e) {
		if !id.OK {
			t.Fatalf("%s: %s", slug, id.Detail)
		}
	}
	site := e.Sites()[1]
	if err := e.StopSite(context.Background(), site.Slug); err != nil {
		t.Fatal(err)
	}
	addr := e.Addrs()[0]
	check := func(when string) {
		t.Helper()
		for slug, ss := range apiStatus(t, addr) {
			if slug != site.Slug {
				continue
			}
			if ss.Identity == nil || ss.Identity.OK || ss.Identity.Checked || ss.Identity.Detail != "not checked: not running" {
				t.Errorf("%s: /api/status identity of %s (%s) is %+v", when, slug, ss.State, ss.Identity)
			}
		}
	}
	check("stopped")
	// The settings break: the next start fails, and its page shows no ✓.
	testenv.AppendFile(t, dir, "proj/settings/dev.py", "\nraise RuntimeError('broken for the test')\n")
	resp, b := pxGet(t, addr, site.LocalDomain, "/whoami/", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "did not start") && !strings.Contains(string(b), "keeps crashing") {
		t.Fatalf("broken settings: HTTP %d\n%s", resp.StatusCode, b)
	}
	if strings.Contains(string(b), "<p>Identity: ") {
		t.Errorf("the error page of a process that did not start shows an identity:\n%s", b)
	}
	check("did not start")
}
