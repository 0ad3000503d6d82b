package devproxy

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/sites"
)

// curlWho fetches url with curl (extra are more flags) and returns the
// fixture's /whoami/ answer and the HTTP version curl used.
func curlWho(t *testing.T, url string, extra ...string) (testenv.Whoami, string) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		testenv.Missing(t, "curl: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"-sS", "--fail-with-body", "-w", "\n%{http_version}"}, extra...)
	out, err := exec.CommandContext(ctx, curl, append(args, url)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, out)
	}
	body, version, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	var w testenv.Whoami
	if err := json.Unmarshal([]byte(body), &w); err != nil {
		t.Fatalf("curl %s: not a whoami answer: %v\n%s", url, err, out)
	}
	return w, version
}

// TestEngineDjangoHTTPS: curl with --cacert and --resolve reaches every
// site of the real Django 3.2 fixture over HTTP/2 through the engine's
// HTTPS listener, by each of its names; each answers with its own
// SITE_ID and sees X-Forwarded-Proto https (http over plain HTTP, even
// when the client claims https). The backends stay HTTP/1.1 runservers.
func TestEngineDjangoHTTPS(t *testing.T) {
	// The CA also covers the fixture's real domains, so that every name
	// form is served.
	ca := testCA(t, "example.com", "example.org", "example.net")
	e, addr, _ := djangoEngine(t, false, func(c *Config) {
		c.HTTPS = &HTTPSConfig{CA: ca, Listen: []string{"127.0.0.1:0"}}
	})
	https := e.HTTPSAddrs()
	if len(https) != 1 {
		t.Fatalf("HTTPS addresses %v", https)
	}
	port := portOf(https[0])
	caFile := filepath.Join(ca.Dir, tlsca.CertFile)
	n := 0
	for _, s := range e.Sites() {
		if !s.Usable() || !s.Enabled {
			continue
		}
		n++
		for _, name := range []string{s.LocalDomain, "static." + s.LocalDomain, sites.StripPort(s.Domain)} {
			url := "https://" + name + ":" + port + "/whoami/"
			w, version := curlWho(t, url, "--http2", "--cacert", caFile, "--resolve", name+":"+port+":127.0.0.1",
				"-H", "X-Forwarded-Proto: http")
			if version != "2" {
				t.Errorf("%s: HTTP version %q, want 2", url, version)
			}
			if w.SiteID != s.ID || w.Proto != "https" || w.Host != name+":"+port || w.FwdHost != name+":"+port {
				t.Errorf("%s reached SITE_ID %d with X-Forwarded-Proto %q, Host %q, X-Forwarded-Host %q; want %d, https, %s:%s",
					url, w.SiteID, w.Proto, w.Host, w.FwdHost, s.ID, name, port)
			}
		}
		// Plain HTTP next to it: X-Forwarded-Proto http, whatever the
		// client claims.
		w, version := curlWho(t, "http://"+addr+"/whoami/", "-H", "Host: "+s.LocalDomain, "-H", "X-Forwarded-Proto: https")
		if version != "1.1" || w.SiteID != s.ID || w.Proto != "http" {
			t.Errorf("plain HTTP to %s: version %s, SITE_ID %d, X-Forwarded-Proto %q; want 1.1, %d, http", s.LocalDomain, version, w.SiteID, w.Proto, s.ID)
		}
	}
	if n < 3 {
		t.Fatalf("only %d routable fixture sites", n)
	}
	// The runservers spoke HTTP/1.1: Django logs each request with its
	// protocol once it answered it.
	for _, s := range e.Sites() {
		if !s.Usable() || !s.Enabled {
			continue
		}
		var h11, other int
		for deadline := time.Now().Add(10 * time.Second); h11 < 4 && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			h11, other = 0, 0
			for _, l := range e.Logs(s.Slug, 0) {
				switch {
				case strings.Contains(l.Text, `"GET /whoami/ HTTP/1.1" 200`):
					h11++
				case strings.Contains(l.Text, `"GET /whoami/ HTTP/`):
					other++
				}
			}
		}
		if h11 != 4 || other != 0 {
			t.Errorf("%s's runserver logged %d HTTP/1.1 and %d other /whoami/ requests, want 4 and 0", s.Slug, h11, other)
		}
	}
}
