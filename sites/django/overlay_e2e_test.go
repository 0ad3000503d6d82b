package django

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// overlayCase is one fixture project and what its sites are.
type overlayCase struct {
	name string
	// sites maps a django_site id to its domain.
	sites map[int64]string
	// whoami is true when the project has /whoami/ with int(SITE_ID)
	// (testdata/django's view JSON-encodes settings.SITE_ID as is, which a
	// per-request object cannot be, so single mode is checked through the
	// probe there).
	whoami bool
	// siteIDEnv is set for projects whose SITE_ID follows $SITE_ID: the
	// engine sets it per process, as it does today.
	siteIDEnv bool
	// noOverlayOK is true when the project serves the right site without
	// the overlay (its settings read $SITE_ID).
	noOverlayOK bool
	// hosts are the name forms each site is reached by.
	hosts func(id int64, domain string) []string
}

func slugHosts(id int64, domain string) []string {
	slug := strings.SplitN(domain, ".", 2)[0]
	if strings.HasPrefix(domain, "127.") {
		slug = "default"
	}
	return []string{slug + ".localhost", strings.Split(domain, ":")[0], "localhost", "localhost:8000", slug + ".localhost:8080"}
}

var overlayCases = []overlayCase{
	{name: "djfixed", sites: map[int64]string{1: "127.0.0.1:8000", 2: "beta.example.com", 3: "gamma.example.org"}, whoami: true, hosts: slugHosts},
	{name: "djpackage", sites: map[int64]string{1: "alpha.example.com", 2: "beta.example.com", 3: "gamma.example.org"}, whoami: true, hosts: slugHosts},
	{name: "djsiteid", sites: map[int64]string{1: "alpha.example.com", 2: "beta.example.com", 3: "gamma.example.org"}, whoami: true, hosts: slugHosts},
	{name: "djmultisite", sites: map[int64]string{1: "alpha.example.com", 2: "beta.example.com", 3: "gamma.example.org"}, whoami: true, hosts: slugHosts},
	{name: "django", sites: map[int64]string{1: "alpha.example.com", 2: "beta.example.com", 3: "www.gamma.example.org"}, siteIDEnv: true, noOverlayOK: true, hosts: slugHosts},
}

type whoami struct {
	SiteID      *int64 `json:"site_id"`
	CurrentSite *int64 `json:"current_site"`
}

// TestOverlayEndToEnd starts real runservers with the environment
// ProcessEnv returns, for every fixture project, in per-site mode (one
// process per site), single mode (three sites from one process, each
// request its own site through the engine's header) and with the overlay
// off, and checks the site every Host form reaches and the probe's verdict.
func TestOverlayEndToEnd(t *testing.T) {
	for _, tc := range overlayCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, tc.name, tc.name != "django")
			info := mustIntrospect(t, dir)
			ov, err := Write(filepath.Join(dir, ".siteplex", "overlay"), info)
			if err != nil {
				t.Fatal(err)
			}
			secret, _ := NewSecret()
			t.Run("per-site", func(t *testing.T) {
				for _, id := range []int64{1, 3} {
					hosts := tc.hosts(id, tc.sites[id])
					env, err := ov.ProcessEnv(ProcessOverlay{Mode: PerSite, SiteID: id, AllowedHosts: hosts, Secret: secret, Key: "s" + strconv.FormatInt(id, 10)})
					if err != nil {
						t.Fatal(err)
					}
					if tc.siteIDEnv {
						env = append([]string{"SITE_ID=" + strconv.FormatInt(id, 10)}, env...)
					}
					srv := startServer(t, dir, env...)
					for _, h := range hosts {
						checkSite(t, tc, srv, h, id, nil)
						checkProbe(t, srv, h, secret, id, 0, true, "")
					}
					checkProbeHidden(t, srv, hosts[0])
				}
			})
			t.Run("single", func(t *testing.T) {
				var all []string
				for id, d := range tc.sites {
					all = append(all, tc.hosts(id, d)...)
				}
				env, err := ov.ProcessEnv(ProcessOverlay{Mode: Single, SiteID: 2, AllowedHosts: all, Secret: secret, Key: "single"})
				if err != nil {
					t.Fatal(err)
				}
				srv := startServer(t, dir, env...)
				for _, id := range []int64{1, 2, 3} {
					for _, h := range tc.hosts(id, tc.sites[id]) {
						hdr := []string{HeaderSecret, secret, HeaderSite, strconv.FormatInt(id, 10)}
						checkSite(t, tc, srv, h, id, hdr)
						checkProbe(t, srv, h, secret, id, id, true, "")
					}
				}
				// Without the secret, the header changes nothing: the
				// default (forced) site 2 answers.
				h := tc.hosts(3, tc.sites[3])[0]
				checkSite(t, tc, srv, h, 2, []string{HeaderSite, "3"})
				checkSite(t, tc, srv, h, 2, []string{HeaderSecret, "wrong", HeaderSite, "3"})
				checkProbeHidden(t, srv, h)
			})
			t.Run("overlay-off", func(t *testing.T) {
				id := int64(3)
				hosts := tc.hosts(id, tc.sites[id])
				env, err := ov.ProcessEnv(ProcessOverlay{Mode: ProbeOnly, SiteID: id, AllowedHosts: hosts, Secret: secret})
				if err != nil {
					t.Fatal(err)
				}
				env = append([]string{"SITE_ID=" + strconv.FormatInt(id, 10)}, env...)
				srv := startServer(t, dir, env...)
				if tc.noOverlayOK {
					checkProbe(t, srv, hosts[0], secret, id, 0, true, "")
					return
				}
				// Every name form fails loudly: the wrong site, or a Host
				// the project's ALLOWED_HOSTS rejects.
				ignored := 0
				for _, h := range append(hosts, "x.example.com") {
					status, hd, body := srv.get(t, ProbePath, h, HeaderSecret, secret)
					v := CheckResponse(Expect{Host: h, SiteID: id}, status, hd, body)
					switch {
					case v.OK:
						t.Errorf("overlay off, Host %s: %s", h, v)
					case strings.Contains(v.Message, "serves site 1, expected 3") && strings.Contains(v.Message, "settings ignore SITE_ID"):
						ignored++
					case !strings.Contains(v.Message, "rejects Host"):
						t.Errorf("overlay off, Host %s: unexpected reason %s", h, v)
					}
				}
				if ignored == 0 {
					t.Errorf("overlay off: no name form said the settings ignore SITE_ID")
				}
			})
		})
	}
}

// checkSite asserts that a request on host reaches site id (through the
// project's own view, or through the probe where the view cannot tell).
func checkSite(t *testing.T, tc overlayCase, srv *server, host string, id int64, hdr []string) {
	t.Helper()
	if !tc.whoami {
		sec, site := "", int64(0)
		for i := 0; i+1 < len(hdr); i += 2 {
			switch hdr[i] {
			case HeaderSecret:
				sec = hdr[i+1]
			case HeaderSite:
				site, _ = strconv.ParseInt(hdr[i+1], 10, 64)
			}
		}
		if sec == "" || sec == "wrong" {
			// Only the probe can tell here, and it needs the secret: the
			// other fixtures check requests without it through /whoami/.
			return
		}
		checkProbe(t, srv, host, sec, id, site, true, "")
		return
	}
	// /whoami/stream/ answers the same from a streaming body, which runs
	// after the middleware returned.
	for _, path := range []string{"/whoami/", "/whoami/stream/"} {
		status, _, body := srv.get(t, path, host, hdr...)
		if status != 200 {
			t.Fatalf("GET %s Host %s: HTTP %d\n%s\n%s", path, host, status, body, srv.log.String())
		}
		var w whoami
		if err := json.Unmarshal(body, &w); err != nil {
			t.Fatalf("GET %s Host %s: %v: %s", path, host, err, body)
		}
		if w.SiteID == nil || *w.SiteID != id || w.CurrentSite == nil || *w.CurrentSite != id {
			t.Errorf("GET %s Host %s: got %s, want site %d", path, host, body, id)
		}
	}
}

// checkProbe probes host and asserts the verdict.
func checkProbe(t *testing.T, srv *server, host, secret string, id, headerSite int64, wantOK bool, wantReason string) {
	t.Helper()
	hdr := []string{HeaderSecret, secret}
	if headerSite > 0 {
		hdr = append(hdr, HeaderSite, strconv.FormatInt(headerSite, 10))
	}
	status, h, body := srv.get(t, ProbePath, host, hdr...)
	v := CheckResponse(Expect{Host: host, SiteID: id}, status, h, body)
	if v.OK != wantOK || !strings.Contains(v.Message, wantReason) {
		t.Errorf("probe Host %s: %s (HTTP %d %s), want ok=%v with %q", host, v.Message, status, body, wantOK, wantReason)
	}
	if wantOK && !strings.HasPrefix(v.Message, "✓") || !wantOK && !strings.HasPrefix(v.Message, "✗") {
		t.Errorf("probe Host %s: verdict %q has the wrong mark", host, v.Message)
	}
}

// checkProbeHidden asserts that without the secret the probe path answers
// exactly as a path the project does not have.
func checkProbeHidden(t *testing.T, srv *server, host string) {
	t.Helper()
	for _, hdr := range [][]string{nil, {HeaderSecret, "wrong"}} {
		st1, h1, b1 := srv.get(t, ProbePath, host, hdr...)
		st2, _, b2 := srv.get(t, "/__siteplex__/other/", host, hdr...)
		if st1 != 404 || st2 != 404 || h1.Get(HeaderProbe) != "" {
			t.Errorf("probe without the secret (%v): HTTP %d (%s), a missing path HTTP %d", hdr, st1, h1.Get(HeaderProbe), st2)
		}
		if strings.Contains(string(b1), "siteplex_probe") || len(b1) == 0 && len(b2) != 0 {
			t.Errorf("probe without the secret leaked: %s", b1)
		}
	}
}
