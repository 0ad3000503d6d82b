package devproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/internal/tlsca"
	"github.com/siteplex/siteplex/sites"
)

// The tests of the engine's HTTPS (docs/https.md, "Serving HTTPS"): real
// TLS listeners with leaves from a throw-away CA in a temp CAROOT, in
// front of real HTTP backends. No trust store is touched: clients get
// the CA through RootCAs, --cacert or -CAfile.

// testCA makes a CA in a fresh temp CAROOT that may also sign domains.
func testCA(t testing.TB, domains ...string) *tlsca.CA {
	t.Helper()
	ca, _, err := tlsca.Ensure(filepath.Join(t.TempDir(), "ca"), tlsca.EnsureOptions{Domains: domains, Label: "test@siteplex"})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// httpsEngine is a started engine with HTTPS on 127.0.0.1:0 next to its
// plain listener, over the backends bs.
type httpsEngine struct {
	e            *Engine
	plain, https string // addresses
	ca           *tlsca.CA
	// sites is what LoadSites returns; set it and Reload to change them.
	mu    sync.Mutex // guards sites
	sites []sites.Site
}

func startHTTPSEngine(t testing.TB, list []sites.Site, bs *backendSet, h HTTPSConfig) *httpsEngine {
	t.Helper()
	if h.CA == nil {
		h.CA = testCA(t)
	}
	if h.Listen == nil {
		h.Listen = []string{"127.0.0.1:0"}
	}
	he := &httpsEngine{ca: h.CA, sites: list}
	e, err := New(Config{Config: supervisor.Config{Project: pxProject(t)}, Listen: []string{"127.0.0.1:0"}, HTTPS: &h,
		LoadSites: func(context.Context) ([]sites.Site, error) {
			he.mu.Lock()
			defer he.mu.Unlock()
			return append([]sites.Site(nil), he.sites...), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.acquire = bs.acquire
	he.e, he.plain = e, startEngine(t, e)
	he.https = e.HTTPSAddrs()[0]
	return he
}

func (he *httpsEngine) setSites(t testing.TB, list []sites.Site) {
	t.Helper()
	he.mu.Lock()
	he.sites = list
	he.mu.Unlock()
	if err := he.e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// pool is a cert pool holding only the CA.
func (he *httpsEngine) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(he.ca.Cert)
	return p
}

// client is an HTTP client that reaches every name at the engine's HTTPS
// address, trusting only the test CA, offering HTTP/2.
func (he *httpsEngine) client() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	tr := &http.Transport{Proxy: nil, ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: he.pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, he.https)
		}}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// port is the HTTPS listener's port.
func (he *httpsEngine) port() string { return portOf(he.https) }

func TestRoutesPredicate(t *testing.T) {
	tab := buildTable(pxSites(), 2, map[string]*atomic.Int64{}, routeOpts{})
	tests := []struct {
		name string
		want bool
	}{
		{"example.de", true},             // domain
		{"de.example-stage.eu", true},    // alias
		{"www.example.de", true},         // real domain
		{"gh.localhost", true},           // local domain
		{"static.gh.localhost", true},    // under a local domain
		{"a.b.gh.localhost", true},       // deeper under it
		{"example.org", true},            // a domain stored with its port
		{"siteplex.localhost", true},     // the index
		{"localhost", true},              // loopback names
		{"127.0.0.1", true},              //
		{"::1", true},                    //
		{"off.localhost", false},         // a disabled site
		{"off.example", false},           //
		{"evil.localhost", false},        // a site with problems
		{"attacker.example", false},      // anything else
		{"other.localhost", false},       //
		{"gh.localhost.evil.com", false}, //
		{"127.0.0.2", false},             //
		{"", false},                      //
		{"localhost.", false},            // (the issuer drops a final dot before asking)
	}
	for _, tt := range tests {
		if got := tab.routes(tt.name); got != tt.want {
			t.Errorf("routes(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	// The predicate runs at every handshake: it allocates nothing.
	if n := testing.AllocsPerRun(100, func() {
		tab.routes("static.gh.localhost")
		tab.routes("attacker.example")
	}); n != 0 {
		t.Errorf("routes allocates %v times per call", n)
	}
}

// TestHTTPSEveryNameOverHTTP2: every routed name of every site answers
// over HTTP/2 with a certificate holding exactly that name, valid 30
// days; the backend (HTTP/1.1) gets X-Forwarded-Proto https.
func TestHTTPSEveryNameOverHTTP2(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	he := startHTTPSEngine(t, list, bs, HTTPSConfig{CA: testCA(t, "example.de", "example.gh", "example-stage.eu", "example.org")})
	c := he.client()
	for _, tt := range []struct{ name, slug string }{
		{"example.de", "de"}, {"de.example-stage.eu", "de"}, {"www.example.de", "de"},
		{"gh.localhost", "gh"}, {"static.gh.localhost", "gh"}, {"example.org", "example-org"},
		{"GH.localhost", "gh"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Get("https://" + tt.name + ":" + he.port() + "/whoami")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.Proto != "HTTP/2.0" {
				t.Errorf("protocol %s, want HTTP/2.0", resp.Proto)
			}
			w := pxWhoami(t, b)
			if w.Site != tt.slug || w.XForwardedProto != "https" || w.Host != tt.name+":"+he.port() {
				t.Errorf("reached %+v, want site %s with X-Forwarded-Proto https", w, tt.slug)
			}
			leaf := resp.TLS.PeerCertificates[0]
			want := strings.ToLower(tt.name)
			if !reflect.DeepEqual(leaf.DNSNames, []string{want}) || len(leaf.IPAddresses) != 0 {
				t.Errorf("SANs %v %v, want exactly %s", leaf.DNSNames, leaf.IPAddresses, want)
			}
			if d := leaf.NotAfter.Sub(leaf.NotBefore); d != 30*24*time.Hour {
				t.Errorf("validity %s, want 30 days", d)
			}
			if resp.TLS.Version < tls.VersionTLS12 {
				t.Errorf("TLS version %x", resp.TLS.Version)
			}
		})
	}
	// The index answers over HTTPS too, and lists the HTTPS address.
	resp, err := c.Get("https://" + IndexHost + ":" + he.port() + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil || !reflect.DeepEqual(st.HTTPS, []string{he.https}) || !reflect.DeepEqual(st.Listen, []string{he.plain}) {
		t.Errorf("status over https: %+v %v", st, err)
	}
}

// TestHTTPSXForwardedProto: https on TLS requests and http on plain ones,
// whatever the client sent, exactly one value.
func TestHTTPSXForwardedProto(t *testing.T) {
	list := []sites.Site{{ID: 1, Slug: "h", Domain: "h.example", LocalDomain: "h.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"h": headerBackend(t)}}
	he := startHTTPSEngine(t, list, bs, HTTPSConfig{})
	for _, tt := range []struct {
		scheme, addr, want string
		client             *http.Client
	}{
		{"https", he.https, "https", he.client()},
		{"http", he.plain, "http", &http.Client{Transport: &http.Transport{Proxy: nil}}},
	} {
		for _, claim := range []string{"", "http", "https"} {
			req, _ := http.NewRequest(http.MethodPost, tt.scheme+"://h.localhost:"+portOf(tt.addr)+"/", strings.NewReader("a=1"))
			if tt.scheme == "http" {
				req.URL.Host = tt.addr
				req.Host = "h.localhost"
			}
			if claim != "" {
				req.Header.Set("X-Forwarded-Proto", claim)
			}
			resp, err := tt.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var got seenHeaders
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if vs := got.Header["X-Forwarded-Proto"]; !reflect.DeepEqual(vs, []string{tt.want}) {
				t.Errorf("%s request claiming %q: the process got X-Forwarded-Proto %q, want exactly %q", tt.scheme, claim, vs, tt.want)
			}
		}
	}
}

// handshake dials the HTTPS address with server name sni, trusting the
// test CA.
func (he *httpsEngine) handshake(sni string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return tls.DialWithDialer(d, "tcp", he.https, &tls.Config{ServerName: sni, RootCAs: he.pool()})
}

// TestHTTPSUnknownNameFailsHandshake: an unknown server name, a disabled
// site's name, a name that left the table, and a routed name outside the
// CA's constraints fail the handshake, and nothing is issued or written
// for them; a name added to the table is served at once.
func TestHTTPSUnknownNameFailsHandshake(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	he := startHTTPSEngine(t, list, bs, HTTPSConfig{})
	events, cancel := he.e.Subscribe(EventError)
	defer cancel()
	for _, name := range []string{"attacker.example", "off.localhost", "other.localhost", "evil.localhost"} {
		if c, err := he.handshake(name); err == nil {
			c.Close()
			t.Errorf("%s: the handshake succeeded", name)
		}
	}
	// example.de is routed but outside this CA (only .localhost): refused,
	// and reported once, with the fix.
	for range 2 {
		if c, err := he.handshake("example.de"); err == nil {
			c.Close()
			t.Error("example.de: the handshake succeeded with a CA that may not sign it")
		}
	}
	leaves, _ := os.ReadDir(filepath.Join(he.ca.Dir, tlsca.LeafDir))
	for _, l := range leaves {
		t.Errorf("a leaf was written for a refused name: %s", l.Name())
	}
	var reported []string
	for len(events) > 0 {
		reported = append(reported, (<-events).Err.Error())
	}
	if len(reported) != 1 || !strings.Contains(reported[0], `"example.de"`) || !strings.Contains(reported[0], "siteplex trust --domain example.de") {
		t.Errorf("refusals reported: %q, want one for example.de with the fix", reported)
	}
	// The predicate is the live table: a new site's name works at once,
	// and a removed one stops working.
	c, err := he.handshake("gh.localhost")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	nl := append(pxSites()[2:], sites.Site{ID: 9, Slug: "new", Domain: "new.example", LocalDomain: "new.localhost", Enabled: true})
	he.setSites(t, nl)
	if c, err := he.handshake("new.localhost"); err != nil {
		t.Errorf("a site added to the table: %v", err)
	} else {
		c.Close()
	}
	if c, err := he.handshake("gh.localhost"); err == nil {
		c.Close()
		t.Error("gh.localhost still handshakes after it left the table (its leaf is cached)")
	}
}

// TestHTTPSOpenSSLAttackerFails: openssl s_client with an unknown server
// name gets no certificate; with a routed one it verifies against the CA.
func TestHTTPSOpenSSLAttackerFails(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		testenv.Missing(t, "openssl: %v", err)
	}
	list := pxSites()
	he := startHTTPSEngine(t, list, newBackends(t, list), HTTPSConfig{})
	caFile := filepath.Join(he.ca.Dir, tlsca.CertFile)
	run := func(name string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", he.https, "-servername", name, "-CAfile", caFile, "-verify_return_error", "-brief")
		cmd.Stdin = strings.NewReader("")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	if out := run("attacker.example"); !strings.Contains(out, "alert internal error") || strings.Contains(out, "CONNECTION ESTABLISHED") {
		t.Errorf("openssl -servername attacker.example: want a failed handshake:\n%s", out)
	}
	if out := run("gh.localhost"); !strings.Contains(out, "CONNECTION ESTABLISHED") || !strings.Contains(out, "Verification: OK") {
		t.Errorf("openssl -servername gh.localhost: want a verified connection:\n%s", out)
	}
}

// TestHTTPSWebSocket: a WebSocket echo over wss:// (TLS, HTTP/1.1 by
// ALPN, as browsers open WebSockets when the server offers no RFC 8441
// extended CONNECT).
func TestHTTPSWebSocket(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	he := startHTTPSEngine(t, list, bs, HTTPSConfig{})
	cfg, err := websocket.NewConfig("wss://gh.localhost:"+he.port()+"/ws", "https://gh.localhost:"+he.port()+"/")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", he.https, &tls.Config{ServerName: "gh.localhost", RootCAs: he.pool(), NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	ws, err := websocket.NewClient(cfg, conn)
	if err != nil {
		t.Fatalf("wss handshake through the engine: %v", err)
	}
	wsEcho(t, ws, "hello over tls", strings.Repeat("y", 70000))
	// The engine does not offer extended CONNECT over HTTP/2 (Go's server
	// leaves it off): browsers then use HTTP/1.1 for wss, as above.
	h2, err := tls.Dial("tcp", he.https, &tls.Config{ServerName: "gh.localhost", RootCAs: he.pool(), NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if p := h2.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Errorf("ALPN h2 offered alone: negotiated %q", p)
	}
}

// TestHTTPSRedirect: with Redirect, plain-HTTP requests for a site's
// names go to https on the engine's HTTPS port (302 for GET and HEAD, 307
// otherwise), while the index, the API and the loopback names stay on
// plain HTTP, and a name the CA may not sign is served over HTTP.
func TestHTTPSRedirect(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	he := startHTTPSEngine(t, list, bs, HTTPSConfig{Redirect: true})
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct {
		method, host, path string
		code               int
		location           string
	}{
		{"GET", "gh.localhost", "/whoami?c=d&e", http.StatusFound, "https://gh.localhost:" + he.port() + "/whoami?c=d&e"},
		{"HEAD", "GH.localhost:8080", "/", http.StatusFound, "https://gh.localhost:" + he.port() + "/"},
		{"POST", "static.gh.localhost", "/form", http.StatusTemporaryRedirect, "https://static.gh.localhost:" + he.port() + "/form"},
		{"PUT", "gh.localhost", "/x", http.StatusTemporaryRedirect, "https://gh.localhost:" + he.port() + "/x"},
		{"GET", "example.de", "/", http.StatusOK, ""}, // outside the CA: stays on http
		{"GET", IndexHost, "/", http.StatusOK, ""},
		{"GET", IndexHost, "/api/status", http.StatusOK, ""},
		{"GET", "localhost", "/", http.StatusOK, ""},
		{"GET", "127.0.0.1", "/api/status", http.StatusOK, ""},
		{"GET", "attacker.example", "/", http.StatusNotFound, ""},
	} {
		req, _ := http.NewRequest(tt.method, "http://"+he.plain+tt.path, nil)
		req.Host = tt.host
		if tt.method == "POST" || tt.method == "PUT" {
			req.Body = io.NopCloser(strings.NewReader("x=1"))
			req.ContentLength = 3
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.code || resp.Header.Get("Location") != tt.location {
			t.Errorf("%s http://%s%s: %d Location %q, want %d %q", tt.method, tt.host, tt.path, resp.StatusCode, resp.Header.Get("Location"), tt.code, tt.location)
		}
	}
	if n := bs.hits["gh"].Load(); n != 0 {
		t.Errorf("redirected requests reached the process %d times", n)
	}
	// The redirect's target answers.
	resp, err := he.client().Get("https://gh.localhost:" + he.port() + "/whoami?c=d&e")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if w := pxWhoami(t, b); w.Site != "gh" || w.Path != "/whoami" {
		t.Errorf("after the redirect: %+v", w)
	}
}

// TestHTTPSLinks: the index, the 404 page and the 502 page link over https
// on the HTTPS port once HTTPS is on, from plain-HTTP requests too; names
// the CA may not sign stay http; without HTTPS every link is http.
func TestHTTPSLinks(t *testing.T) {
	list := pxSites()
	list[0].LocalDomain = "de.test" // a custom domain format the CA does not cover
	bs := newBackends(t, list)
	bs.fail = func(slug string) error {
		if slug == "example-org" {
			return errors.New("no process")
		}
		return nil
	}
	he := startHTTPSEngine(t, list, bs, HTTPSConfig{})
	idx := func(c *http.Client, base string) Index {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		req.Host = IndexHost
		req.Header.Set("Accept", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var idx Index
		if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
			t.Fatal(err)
		}
		return idx
	}
	plainPort := portOf(he.plain)
	for _, via := range []struct {
		name   string
		client *http.Client
		base   string
	}{
		{"plain", &http.Client{Transport: &http.Transport{Proxy: nil}}, "http://" + he.plain},
		{"tls", he.client(), "https://" + IndexHost + ":" + he.port()},
	} {
		t.Run(via.name, func(t *testing.T) {
			urls := map[string]string{}
			for _, s := range idx(via.client, via.base).Sites {
				urls[s.Slug] = s.URL
			}
			want := map[string]string{
				"gh": "https://gh.localhost:" + he.port() + "/",
				"de": "http://de.test:" + plainPort + "/",
			}
			for slug, u := range want {
				if urls[slug] != u {
					t.Errorf("index URL of %s: %q, want %q", slug, urls[slug], u)
				}
			}
		})
	}
	indexLink := `href="https://siteplex.localhost:` + he.port() + `/"`
	resp, b := pxGet(t, he.plain, "attacker.example", "/", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), indexLink) {
		t.Errorf("404 page over http: %d, want a link %s:\n%s", resp.StatusCode, indexLink, b)
	}
	resp, b = pxGet(t, he.plain, "example-org.localhost", "/", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), indexLink) {
		t.Errorf("502 page over http: %d, want a link %s:\n%s", resp.StatusCode, indexLink, b)
	}
	resp2, err := he.client().Get("https://example-org.localhost:" + he.port() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), indexLink) {
		t.Errorf("502 page over https: %d, want a link %s:\n%s", resp2.StatusCode, indexLink, b)
	}
	// engine.json names the HTTPS address; the control API stays on Listen.
	ef, err := ReadEngineFile(he.e.stateDir())
	if err != nil || !reflect.DeepEqual(ef.HTTPS, []string{he.https}) || !reflect.DeepEqual(ef.Listen, []string{he.plain}) {
		t.Errorf("engine.json: %+v %v", ef, err)
	}

	// Without HTTPS: http everywhere, and no https addresses.
	e, addr := startTestEngine(t, list, newBackends(t, list), 0)
	if st := e.Status(); st.HTTPS == nil || len(st.HTTPS) != 0 {
		t.Errorf("status without HTTPS: https %#v, want []", st.HTTPS)
	}
	_, b = pxGet(t, addr, "attacker.example", "/", nil)
	if want := `href="http://siteplex.localhost:` + portOf(addr) + `/"`; !strings.Contains(string(b), want) {
		t.Errorf("404 page without HTTPS: want %s:\n%s", want, b)
	}
}

func TestSiteURL(t *testing.T) {
	local := func(n string) bool { return strings.HasSuffix(n, ".localhost") }
	tests := []struct {
		host          string
		listen, https []string
		permits       func(string) bool
		want          string
	}{
		{"gh.localhost", []string{"127.0.0.1:80"}, nil, local, "http://gh.localhost/"},
		{"gh.localhost", []string{"127.0.0.1:8080", "[::1]:8080"}, []string{}, nil, "http://gh.localhost:8080/"},
		{"gh.localhost", []string{"127.0.0.1:80"}, []string{"127.0.0.1:443", "[::1]:443"}, local, "https://gh.localhost/"},
		{"gh.localhost", []string{"127.0.0.1:80"}, []string{"127.0.0.1:8443"}, local, "https://gh.localhost:8443/"},
		{"GH.Localhost", []string{"127.0.0.1:80"}, []string{"127.0.0.1:8443"}, local, "https://GH.Localhost:8443/"},
		{"example.gh", []string{"127.0.0.1:8080"}, []string{"127.0.0.1:8443"}, local, "http://example.gh:8080/"},
		{"example.gh", []string{"127.0.0.1:8080"}, []string{"127.0.0.1:8443"}, nil, "https://example.gh:8443/"},
		{"gh.localhost", nil, nil, nil, ""},
		{"", []string{"127.0.0.1:80"}, nil, nil, ""},
	}
	for _, tt := range tests {
		if got := SiteURL(tt.host, tt.listen, tt.https, tt.permits); got != tt.want {
			t.Errorf("SiteURL(%q, %v, %v) = %q, want %q", tt.host, tt.listen, tt.https, got, tt.want)
		}
	}
}

// TestHTTPSDefaultAddresses: without addresses, HTTPS binds
// 127.0.0.1:443 and [::1]:443 and a refusal says it is on by default
// (the ways out name --https off); given addresses are bound as they are.
func TestHTTPSDefaultAddresses(t *testing.T) {
	ca := testCA(t)
	for _, tt := range []struct {
		listen    []string
		want      []string
		byDefault bool
	}{
		{nil, []string{"127.0.0.1:443", "[::1]:443"}, true},
		{[]string{"127.0.0.1:8443"}, []string{"127.0.0.1:8443"}, false},
	} {
		e, err := New(Config{HTTPS: &HTTPSConfig{CA: ca, Listen: tt.listen}})
		if err != nil {
			t.Fatal(err)
		}
		got, byDefault := e.httpsListen()
		if !reflect.DeepEqual(got, tt.want) || byDefault != tt.byDefault {
			t.Errorf("listen %v: %v %v, want %v %v", tt.listen, got, byDefault, tt.want, tt.byDefault)
		}
	}
	if _, err := New(Config{HTTPS: &HTTPSConfig{}}); err == nil {
		t.Error("HTTPS without a CA: no error")
	}
	// A port in use fails the whole start, and nothing stays bound.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	plain := fmt.Sprintf("127.0.0.1:%d", free)
	e, err := New(Config{Config: supervisor.Config{Project: pxProject(t)}, Listen: []string{plain}, HTTPS: &HTTPSConfig{CA: ca, Listen: []string{busy.Addr().String()}}})
	if err != nil {
		t.Fatal(err)
	}
	err = e.Start(context.Background())
	var le *ListenError
	if !errors.As(err, &le) || !le.HTTPS || le.ByDefault || !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "--https 127.0.0.1:8443") {
		t.Fatalf("start with a busy HTTPS port: %v", err)
	}
	_ = e.Close(context.Background())
	if l, err := net.Listen("tcp", plain); err != nil {
		t.Errorf("the plain address stayed bound after the failed start: %v", err)
	} else {
		l.Close()
	}
}

func TestListenErrorWaysOut(t *testing.T) {
	tests := []struct {
		name string
		le   ListenError
		want []string
		not  []string
	}{
		{"port 80", ListenError{Addr: "127.0.0.1:80", Err: syscall.EACCES},
			[]string{"cannot listen on 127.0.0.1:80: permission denied", "setcap cap_net_bind_service=+ep", "ip_unprivileged_port_start=80", "siteplex serve --listen 127.0.0.1:8080"},
			[]string{"--https"}},
		{"port 443 by default", ListenError{Addr: "127.0.0.1:443", Err: syscall.EACCES, HTTPS: true, ByDefault: true},
			[]string{"cannot listen on 127.0.0.1:443 for HTTPS: permission denied", "setcap cap_net_bind_service=+ep", "ip_unprivileged_port_start=443", "siteplex serve --https 127.0.0.1:8443", "siteplex serve --https off", `https = "off"`},
			[]string{"--listen"}},
		{"port 443 asked for", ListenError{Addr: "127.0.0.1:443", Err: syscall.EACCES, HTTPS: true},
			[]string{"ip_unprivileged_port_start=443", "siteplex serve --https 127.0.0.1:8443"},
			[]string{"--https off"}},
		{"443 in use by default", ListenError{Addr: "127.0.0.1:443", Err: syscall.EADDRINUSE, HTTPS: true, ByDefault: true},
			[]string{"another program uses that port", "--https 127.0.0.1:8443", "; or serve plain HTTP only: siteplex serve --https off"},
			[]string{"setcap", "or or"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := tt.le.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message lacks %q:\n%s", w, msg)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(msg, n) {
					t.Errorf("message has %q:\n%s", n, msg)
				}
			}
		})
	}
}
