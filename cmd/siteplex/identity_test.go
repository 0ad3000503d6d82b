package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/internal/testenv"
)

// waitServeIdentities polls serve's /api/status until every site has a
// verdict.
func waitServeIdentities(t *testing.T, sp *serveProc) map[string]devproxy.SiteStatus {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, b := httpGet(t, sp.addr, devproxy.IndexHost, "/api/status")
		var st devproxy.Status
		if code == 200 && json.Unmarshal(b, &st) == nil && len(st.Sites) > 0 {
			out := map[string]devproxy.SiteStatus{}
			done := true
			for _, s := range st.Sites {
				out[s.Slug] = s
				if s.Identity == nil || !s.Identity.Checked {
					done = false
				}
			}
			if done {
				return out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no verdict for every site: %s\nstderr:\n%s", b, sp.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServeIdentityInSites: `siteplex serve` on the hard-coded SITE_ID
// fixture probes every site ✓, and `siteplex sites` shows it.
func TestServeIdentityInSites(t *testing.T) {
	bin := buildSiteplex(t)
	dir := testenv.DjangoFixture(t, "djfixed", true)
	sp := startServe(t, bin, dir, "--python", testenv.Python, "--start", "all", "--no-watch")
	for slug, s := range waitServeIdentities(t, sp) {
		if !s.Identity.OK {
			t.Errorf("%s: %s", slug, s.Identity.Detail)
		}
	}
	if !strings.Contains(sp.stderr.String(), "identity ✓ site 3 on gamma-example-org.localhost, gamma.example.org") {
		t.Errorf("serve's stderr lacks the verdict:\n%s", sp.stderr.String())
	}
	out, errOut, code := runCLI(t, dir, nil, "sites", "--python", testenv.Python)
	if code != 0 || strings.Count(out, "running ✓") != 3 {
		t.Errorf("sites: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "sites from django_site (django_site)") {
		t.Errorf("sites does not say where the sites come from: %s", errOut)
	}
	// The JSON form is unchanged: no process state, no identity.
	js, _, _ := runCLI(t, dir, nil, "sites", "--json", "--python", testenv.Python)
	if strings.Contains(js, "identity") || strings.Contains(js, "running") {
		t.Errorf("sites --json changed: %s", js)
	}
}

// pgsClient asks serve at addr with Host host, Origin/Referer/cookies as
// given, and follows no redirect.
func pgsGet(t *testing.T, addr, host, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestServeHostRewritingPGSchemas runs `siteplex serve` over a real
// django-pgschemas 0.12 project migrated on PostgreSQL: its middleware
// picks the tenant from the Host alone, so siteplex sends each tenant's
// primary domain upstream for its local names, and maps redirects and
// cookies back.
func TestServeHostRewritingPGSchemas(t *testing.T) {
	dir, env, _ := testenv.PGSchemasProject(t, "pgsrewrite")
	bin := buildSiteplex(t)
	testenv.Manage(t, dir, env, "shell", "-c", `
from shared_public.models import Tenant, Domain
t1 = Tenant.objects.create(schema_name="tenant1")
Domain.objects.create(tenant=t1, domain="tenant1.localhost", is_primary=True)
Domain.objects.create(tenant=t1, domain="tenant1.example", is_primary=False)
t2 = Tenant.objects.create(schema_name="tenant2")
Domain.objects.create(tenant=t2, domain="tenant2.localhost", is_primary=True)
`)
	ids := testenv.Manage(t, dir, env, "shell", "-c", `
from shared_public.models import Tenant
print(Tenant.objects.get(schema_name="tenant1").pk)`)
	// The env file gives serve's processes the database, and forces
	// tenant1 for localhost.
	envFile := strings.Join(env, "\n") + "\nSITE_ID=" + strings.TrimSpace(ids) + "\n"
	if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(envFile), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := startServe(t, bin, dir, "--python", testenv.Python, "--start", "all", "--no-watch")
	for slug, s := range waitServeIdentities(t, sp) {
		if !s.Identity.OK || !strings.Contains(s.Identity.Detail, "tenant ") {
			t.Errorf("%s: %s", slug, s.Identity.Detail)
		}
	}
	// Every Host form reaches its tenant.
	for _, tc := range []struct{ host, cookie, want string }{
		{"tenant1-localhost.localhost", "", "tenant1"},        // local name: rewritten
		{"static.tenant1-localhost.localhost", "", "tenant1"}, // a subdomain of it
		{"tenant1.localhost", "", "tenant1"},                  // the real domain: unchanged
		{"tenant1.example", "", "tenant1"},                    // an alias: unchanged
		{"tenant2-localhost.localhost", "", "tenant2"},
		{"blog-localhost.localhost", "", "blog"}, // a static tenant
		{"localhost", "", "tenant1"},             // the forced site
		{"localhost", "tenant2-localhost", "tenant2"},
	} {
		hdr := map[string]string{}
		if tc.cookie != "" {
			hdr["Cookie"] = "siteplex-site=" + tc.cookie
		}
		resp, body := pgsGet(t, sp.addr, tc.host, "/", hdr)
		if resp.StatusCode != 200 || body != tc.want {
			t.Errorf("Host %s (cookie %q): HTTP %d %.200q, want %s", tc.host, tc.cookie, resp.StatusCode, body, tc.want)
		}
	}

	local := "tenant1-localhost.localhost"
	// What Django saw: the canonical host, the browser's in
	// X-Forwarded-Host, a same-origin Origin and Referer on the
	// canonical origin.
	_, body := pgsGet(t, sp.addr, local, "/host/", map[string]string{"Origin": "http://" + local, "Referer": "http://" + local + "/form/?x=1"})
	var seen map[string]string
	if err := json.Unmarshal([]byte(body), &seen); err != nil {
		t.Fatalf("/host/: %v: %.300s", err, body)
	}
	want := map[string]string{"host": "tenant1.localhost", "forwarded_host": local, "origin": "http://tenant1.localhost",
		"referer": "http://tenant1.localhost/form/?x=1", "schema": "tenant1"}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("/host/ on %s: %s = %q, want %q", local, k, seen[k], v)
		}
	}
	// A cross-origin Origin is left alone (CSRF must still refuse it).
	_, body = pgsGet(t, sp.addr, local, "/host/", map[string]string{"Origin": "http://evil.example"})
	if !strings.Contains(body, `"origin": "http://evil.example"`) {
		t.Errorf("cross-origin Origin changed: %s", body)
	}

	// Redirects come back on the local name.
	for path, loc := range map[string]string{"/redirect/": "http://" + local + "/landed/", "/redirect-sr/": "//" + local + "/landed/"} {
		resp, _ := pgsGet(t, sp.addr, local, path, nil)
		if got := resp.Header.Get("Location"); resp.StatusCode/100 != 3 || got != loc {
			t.Errorf("%s on %s: HTTP %d Location %q, want %q", path, local, resp.StatusCode, got, loc)
		}
	}
	// A cookie set for the canonical domain is usable on the local name.
	resp, _ := pgsGet(t, sp.addr, local, "/cookie/", nil)
	jar, _ := cookiejar.New(nil)
	u := &url.URL{Scheme: "http", Host: local, Path: "/"}
	jar.SetCookies(u, resp.Cookies())
	if cs := jar.Cookies(u); len(cs) != 1 || cs[0].Value != "tenant1" {
		t.Errorf("cookie on %s: Set-Cookie %q, the jar keeps %v", local, resp.Header.Values("Set-Cookie"), cs)
	}
	if sub := (&url.URL{Scheme: "http", Host: "static." + local, Path: "/"}); len(jar.Cookies(sub)) != 1 {
		t.Errorf("the cookie does not reach the local name's subdomains: Set-Cookie %q", resp.Header.Values("Set-Cookie"))
	}

	// On the real domain nothing is rewritten.
	resp, _ = pgsGet(t, sp.addr, "tenant1.localhost", "/redirect/", nil)
	if got := resp.Header.Get("Location"); got != "http://tenant1.localhost/landed/" {
		t.Errorf("real domain redirect: Location %q", got)
	}
	resp, _ = pgsGet(t, sp.addr, "tenant1.localhost", "/cookie/", nil)
	if got := resp.Header.Get("Set-Cookie"); !strings.Contains(got, "Domain=tenant1.localhost") {
		t.Errorf("real domain cookie: %q", got)
	}
	_, body = pgsGet(t, sp.addr, "tenant1.example", "/host/", map[string]string{"Origin": "http://tenant1.example"})
	if !strings.Contains(body, `"host": "tenant1.example"`) || !strings.Contains(body, `"origin": "http://tenant1.example"`) {
		t.Errorf("alias /host/: %s", body)
	}

	// sites names the framework the sites come from.
	_, errOut, code := runCLI(t, dir, envMap(env), "sites", "--python", testenv.Python)
	if code != 0 || !strings.Contains(errOut, "sites from django_pgschemas") {
		t.Errorf("sites: exit %d: %s", code, errOut)
	}
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
