package devproxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/siteplex/siteplex/devproxy/demosite"
	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// testProject is an empty project in a temp folder.
func pxProject(t testing.TB) *sites.Project {
	t.Helper()
	return &sites.Project{Root: t.TempDir(), Name: "test", Config: &sites.Config{},
		Env: &sites.EnvFile{Values: map[string]string{}}}
}

// backendSet is a set of real HTTP backends (demo sites), one per slug,
// that count the requests they get.
type backendSet struct {
	addr map[string]string
	hits map[string]*atomic.Int64
	// acquired counts acquire calls; fail makes acquire return an error.
	fail func(slug string) error
}

func newBackends(t testing.TB, list []sites.Site) *backendSet {
	t.Helper()
	bs := &backendSet{addr: map[string]string{}, hits: map[string]*atomic.Int64{}}
	for _, s := range list {
		h := demosite.Handler(demosite.Options{SiteID: strconv.FormatInt(s.ID, 10), Site: s.Slug})
		n := new(atomic.Int64)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			h.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		bs.addr[s.Slug] = srv.Listener.Addr().String()
		bs.hits[s.Slug] = n
	}
	return bs
}

func (bs *backendSet) total() int64 {
	var n int64
	for _, h := range bs.hits {
		n += h.Load()
	}
	return n
}

// startTestEngine runs a real engine on 127.0.0.1:0 whose sites are list
// and whose backends are bs (instead of supervised processes).
func startTestEngine(t testing.TB, list []sites.Site, bs *backendSet, forced int64) (*Engine, string) {
	t.Helper()
	e := newTestEngine(t, list, bs, forced)
	return e, startEngine(t, e)
}

// newTestEngine is startTestEngine's engine before Start, for tests that
// change it first.
func newTestEngine(t testing.TB, list []sites.Site, bs *backendSet, forced int64) *Engine {
	t.Helper()
	p := pxProject(t)
	if forced != 0 {
		p.Env.Values["SITE_ID"] = strconv.FormatInt(forced, 10)
	}
	e, err := New(Config{Config: supervisor.Config{Project: p}, Listen: []string{"127.0.0.1:0"}, Kind: KindUI,
		LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
	if err != nil {
		t.Fatal(err)
	}
	e.acquire = bs.acquire
	return e
}

// acquire hands out the backends instead of the supervisor (bs.fail may
// refuse).
func (bs *backendSet) acquire(ctx context.Context, r *siteRoute) (string, func(), error) {
	if bs.fail != nil {
		if err := bs.fail(r.site.Slug); err != nil {
			return "", nil, err
		}
	}
	return bs.addr[r.site.Slug], func() {}, nil
}

// startEngine starts e, closes it at the end of the test and returns its
// address.
func startEngine(t testing.TB, e *Engine) string {
	t.Helper()
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e.Addrs()[0]
}

// get sends a GET for path with the given Host to the proxy at addr.
func pxGet(t testing.TB, addr, host, path string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", path, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func pxWhoami(t testing.TB, b []byte) demosite.WhoAmI {
	t.Helper()
	var w demosite.WhoAmI
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("not a whoami answer: %v: %s", err, b)
	}
	return w
}

func TestProxyRoutesEveryHostForm(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	_, addr := startTestEngine(t, list, bs, 2)
	tests := []struct{ host, siteID string }{
		{"example.de", "1"},
		{"EXAMPLE.de:80", "1"},
		{"www.example.de", "1"},
		{"de.example-stage.eu", "1"},
		{"de.localhost", "1"},
		{"img.de.localhost", "1"},
		{"gh.localhost", "2"},
		{"example.org:8000", "3"},
		{"example-org.localhost", "3"},
		{"clash.example", "6"},
		{"localhost", "2"}, // the forced site
		{"127.0.0.1", "2"},
		{"[::1]", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			resp, b := pxGet(t, addr, tt.host, "/whoami", nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			w := pxWhoami(t, b)
			if w.SiteID != tt.siteID {
				t.Errorf("Host %s reached SITE_ID %s, want %s", tt.host, w.SiteID, tt.siteID)
			}
			if w.Host != tt.host {
				t.Errorf("backend saw Host %q, want the original %q", w.Host, tt.host)
			}
			if w.XForwardedFor != "127.0.0.1" || w.XForwardedProto != "http" || w.XForwardedHost != tt.host {
				t.Errorf("X-Forwarded-For/Proto/Host = %q %q %q", w.XForwardedFor, w.XForwardedProto, w.XForwardedHost)
			}
		})
	}
}

func TestIndexOnlyForLoopbackNames(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	_, addr := startTestEngine(t, list, bs, 0)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	for _, host := range []string{"siteplex.localhost", "siteplex.localhost:" + port, "localhost", "127.0.0.1:" + port, "[::1]", "SITEPLEX.localhost."} {
		for _, accept := range []string{"text/html", "application/json"} {
			resp, b := pxGet(t, addr, host, "/", map[string]string{"Accept": accept})
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "gh.localhost") {
				t.Errorf("Host %s, %s: status %d, want the index with every site: %.200s", host, accept, resp.StatusCode, b)
			}
		}
	}
	_, b := pxGet(t, addr, "siteplex.localhost", "/", map[string]string{"Accept": "application/json"})
	var idx Index
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Sites) != len(list) {
		t.Fatalf("JSON index: %v, %d sites: %s", err, len(idx.Sites), b)
	}
	for _, s := range idx.Sites {
		if s.Routed != (s.Slug != "off" && s.Slug != "evil") {
			t.Errorf("site %s routed = %v", s.Slug, s.Routed)
		}
	}

	// A foreign Host (DNS rebinding: an attacker's name pointed at
	// 127.0.0.1) gets a short 404 that names no site.
	for _, host := range []string{"attacker.example", "off.example", "evil.localhost", "127.0.0.2", "localhost.attacker.example", "siteplex.localhost.attacker.example"} {
		for _, path := range []string{"/", "/api/status", "/api/sites"} {
			for _, accept := range []string{"text/html", "application/json"} {
				resp, b := pxGet(t, addr, host, path, map[string]string{"Accept": accept})
				page := string(b)
				if resp.StatusCode != http.StatusNotFound {
					t.Errorf("Host %s %s: status %d, want 404", host, path, resp.StatusCode)
				}
				for _, s := range list {
					if strings.Contains(page, s.Slug+".localhost") || strings.Contains(page, s.Domain) {
						t.Errorf("Host %s %s (%s) shows site %s: %s", host, path, accept, s.Slug, page)
					}
				}
				if want := "http://siteplex.localhost:" + port + "/"; !strings.Contains(page, want) {
					t.Errorf("Host %s: the 404 does not link to %s: %s", host, want, page)
				}
			}
		}
	}
	if n := bs.total(); n != 0 {
		t.Errorf("backends got %d requests for unknown hosts, want 0", n)
	}
}

func TestMalformedHostIs400(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	_, addr := startTestEngine(t, list, bs, 2)
	for _, tt := range []struct{ host, want string }{
		{"gh.localhost", "200"},
		{"gh.localhost:8080", "200"},
		{"GH.localhost.", "200"},
		{"[::1]:8080", "200"}, // the forced site, gh
		{"127.0.0.1", "200"},
		{"gh.localhost:80@evil.example", "400"},
		{"user@gh.localhost", "400"},
		{"gh.localhost:", "400"},
		{"gh.localhost:99999", "400"},
		{"gh.localhost:80:80", "400"},
		{"gh.localhost:8o", "400"},
		{"gh..localhost", "400"},
		{".gh.localhost", "400"},
		{"gh.localhost/x", "400"},
		{"gh.localhost%2f", "400"},
		{"::1", "400"},
		{"[::1", "400"},
		{"[::1]x", "400"},
		{"[fe80::1%25eth0]", "400"},
		{"[127.0.0.1]", "400"},
		{`gh.local\host`, "400"},
		{"gh,localhost", "400"},
		{"gh.localhost gh.localhost", "400"},
		{"ünïcode.localhost", "400"},
		{strings.Repeat("a", 64) + ".localhost", "400"},
	} {
		t.Run(tt.host, func(t *testing.T) {
			for _, method := range []string{"GET", "POST"} {
				body := ""
				if method == "POST" {
					body = "Content-Length: 2\r\n\r\nhi"
				} else {
					body = "\r\n"
				}
				line := pxRaw(t, addr, method+" /whoami HTTP/1.1\r\nHost: "+tt.host+"\r\nConnection: close\r\n"+body)
				if !strings.Contains(line, " "+tt.want+" ") {
					t.Errorf("%s with Host %q: %q, want %s", method, tt.host, line, tt.want)
				}
			}
		})
	}
	if n := bs.hits["gh"].Load(); n != 10 {
		t.Errorf("gh's backend got %d requests, want the 10 with a valid Host", n)
	}
}

// rawRequest writes a raw HTTP/1.1 request and returns the status line.
func pxRaw(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	return strings.TrimSpace(line)
}

func TestProxyRefusesConnectAndAbsoluteForm(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	_, addr := startTestEngine(t, list, bs, 2)
	tests := []struct {
		name, raw, want string
	}{
		{"CONNECT", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", "405"},
		{"CONNECT to a site", "CONNECT gh.localhost:80 HTTP/1.1\r\nHost: gh.localhost\r\n\r\n", "405"},
		{"absolute-form other host", "GET http://example.com/ HTTP/1.1\r\nHost: gh.localhost\r\n\r\n", "403"},
		{"absolute-form localhost", "GET http://localhost.evil/ HTTP/1.1\r\nHost: localhost\r\n\r\n", "403"},
		{"absolute-form a site", "GET http://gh.localhost/whoami HTTP/1.1\r\nHost: gh.localhost\r\n\r\n", "200"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := pxRaw(t, addr, tt.raw)
			if !strings.Contains(line, " "+tt.want+" ") {
				t.Errorf("answer %q, want %s", line, tt.want)
			}
		})
	}
	if n := bs.hits["gh"].Load(); n != 1 {
		t.Errorf("gh's backend got %d requests, want only the absolute-form one for its own host", n)
	}
	if n := bs.total(); n != 1 {
		t.Errorf("backends got %d requests, want 1", n)
	}
}

func TestCookieOverride(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	_, addr := startTestEngine(t, list, bs, 0)

	resp, _ := pxGet(t, addr, "localhost", "/", nil)
	if resp.StatusCode != 200 || bs.total() != 0 {
		t.Fatalf("localhost with no forced site: status %d, backend hits %d; want the index", resp.StatusCode, bs.total())
	}
	resp, _ = pxGet(t, addr, "localhost", "/whoami?x=1&siteplex-site=gh", nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/whoami?x=1" {
		t.Fatalf("select: status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == cookieName {
			cookie = c
		}
	}
	if cookie == nil || cookie.Value != "gh" {
		t.Fatalf("no %s=gh cookie: %v", cookieName, resp.Cookies())
	}
	_, b := pxGet(t, addr, "localhost:8080", "/whoami", map[string]string{"Cookie": cookieName + "=gh"})
	if w := pxWhoami(t, b); w.SiteID != "2" {
		t.Errorf("with the cookie, localhost reached SITE_ID %s, want 2", w.SiteID)
	}
	resp, _ = pxGet(t, addr, "localhost", "/?siteplex-site=", map[string]string{"Cookie": cookieName + "=gh"})
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == cookieName && c.MaxAge < 0)
	}
	if resp.StatusCode != http.StatusFound || !cleared {
		t.Errorf("clearing: status %d cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, b = pxGet(t, addr, "localhost", "/?siteplex-site=nope", nil)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	if want := "http://siteplex.localhost:" + port + "/"; resp.StatusCode != http.StatusNotFound || !strings.Contains(string(b), want) {
		t.Errorf("unknown slug: status %d, want 404 linking to %s: %s", resp.StatusCode, want, b)
	}
}

func TestUseSwitchesLocalhostAtOnce(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	e, addr := startTestEngine(t, list, bs, 1)
	_, b := pxGet(t, addr, "localhost", "/whoami", nil)
	if w := pxWhoami(t, b); w.SiteID != "1" {
		t.Fatalf("forced 1: got SITE_ID %s", w.SiteID)
	}
	if err := e.Use(context.Background(), 6); err != nil {
		t.Fatal(err)
	}
	_, b = pxGet(t, addr, "localhost", "/whoami", nil)
	if w := pxWhoami(t, b); w.SiteID != "6" {
		t.Errorf("after Use(6): got SITE_ID %s", w.SiteID)
	}
	if st := e.Status(); st.ForcedSiteID != 6 {
		t.Errorf("status forced = %d", st.ForcedSiteID)
	}
	if err := e.Use(context.Background(), 99); err == nil || !sites.IsUsage(err) {
		t.Errorf("Use(99) = %v, want a usage error", err)
	}
	if err := e.Use(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	resp, _ := pxGet(t, addr, "localhost", "/", nil)
	if resp.Header.Get("Content-Type") != "text/html; charset=utf-8" || bs.hits["de"].Load()+bs.hits["clash"].Load() != 2 {
		t.Errorf("after clearing, localhost should get the index")
	}
}

// pxPattern yields n bytes of a repeating pattern without holding them.
type pxPattern struct{ n, off int64 }

func (p *pxPattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int64(len(b))
	if rem := p.n - p.off; k > rem {
		k = rem
	}
	for i := range b[:k] {
		b[i] = byte((p.off + int64(i)) % 251)
	}
	p.off += k
	return int(k), nil
}

// heapWatch samples HeapInuse until stopped and reports the peak growth.
func pxHeapWatch() (stop func() uint64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
					peak.Store(ms.HeapInuse - base)
				}
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

func TestProxyStreamsLargeUploadUnbuffered(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	_, addr := startTestEngine(t, list, bs, 0)
	const size = 20 << 20
	h := sha256.New()
	_, _ = io.Copy(h, &pxPattern{n: size})
	want := hex.EncodeToString(h.Sum(nil))

	stop := pxHeapWatch()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/upload", &pxPattern{n: size})
	req.Host = "gh.localhost"
	req.ContentLength = size
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	growth := stop()
	var up demosite.Upload
	if err := json.Unmarshal(b, &up); err != nil || up.Bytes != size || up.SHA256 != want {
		t.Fatalf("upload arrived as %+v (%v), want %d bytes sha %s", up, err, size, want)
	}
	t.Logf("heap growth during a %d MiB upload: %.1f MiB", size>>20, float64(growth)/(1<<20))
	if growth > size/4 {
		t.Errorf("heap grew %d bytes during a %d-byte upload: the proxy buffers it", growth, size)
	}
}

func TestProxyStreamsResponsesUnbuffered(t *testing.T) {
	// A backend that sends one chunk, then waits until the client has seen
	// it before it finishes: a buffering proxy would deadlock (until the
	// test's timeout) here.
	seen := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			n, _ := io.Copy(w, &pxPattern{n: 20 << 20})
			_ = n
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-seen:
		case <-time.After(20 * time.Second):
			return
		}
		fmt.Fprint(w, "data: second\n\n")
	}))
	defer srv.Close()
	list := []sites.Site{{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"s": srv.Listener.Addr().String()}}
	_, addr := startTestEngine(t, list, bs, 0)

	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/events", nil)
	req.Host = "s.localhost"
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v", line, err)
	}
	close(seen)
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "data: second") {
		t.Errorf("rest of the stream: %q", rest)
	}

	// A 20 MiB download passes without the proxy holding it.
	stop := pxHeapWatch()
	req, _ = http.NewRequest(http.MethodGet, "http://"+addr+"/big", nil)
	req.Host = "s.localhost"
	resp2, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp2.Body)
	resp2.Body.Close()
	growth := stop()
	if n != 20<<20 {
		t.Fatalf("download: %d bytes", n)
	}
	t.Logf("heap growth during a 20 MiB download: %.1f MiB", float64(growth)/(1<<20))
	if growth > 5<<20 {
		t.Errorf("heap grew %d bytes during a 20 MiB download: the proxy buffers it", growth)
	}
}

// dialWebSocket opens ws://host/ws through the engine at addr, sending
// hdr with the handshake; the connection closes with the test.
func dialWebSocket(t *testing.T, addr, host string, hdr http.Header) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig("ws://"+host+"/ws", "http://"+host+"/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header = hdr
	tcp, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcp.Close() })
	_ = tcp.SetDeadline(time.Now().Add(10 * time.Second))
	ws, err := websocket.NewClient(cfg, tcp)
	if err != nil {
		t.Fatalf("WebSocket handshake through the proxy: %v", err)
	}
	return ws
}

// wsEcho sends each message on ws and checks that the echo comes back
// whole (the echo server may split a long message into several frames).
func wsEcho(t *testing.T, ws *websocket.Conn, msgs ...string) {
	t.Helper()
	for _, msg := range msgs {
		if err := websocket.Message.Send(ws, msg); err != nil {
			t.Fatal(err)
		}
		var got string
		for len(got) < len(msg) {
			var part string
			if err := websocket.Message.Receive(ws, &part); err != nil {
				t.Fatal(err)
			}
			got += part
		}
		if got != msg {
			t.Errorf("echo: got %d bytes, want %d", len(got), len(msg))
		}
	}
}

func TestProxyWebSocketEcho(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	e, addr := startTestEngine(t, list, bs, 0)
	ws := dialWebSocket(t, addr, "gh.localhost", nil)
	wsEcho(t, ws, "hello", strings.Repeat("x", 100000))
	ws.Close()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range e.Requests(0) {
			if r.Site == "gh" && r.Status == http.StatusSwitchingProtocols {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("no 101 request record for the WebSocket: %+v", e.Requests(0))
}

func TestBackoffPageShowsOutput(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	var tail []string
	for i := range 60 {
		tail = append(tail, fmt.Sprintf("line %d", i))
	}
	tail[59] = "ImportError: No module named '<settings>'"
	bs.fail = func(slug string) error {
		switch slug {
		case "gh":
			return &supervisor.BackoffError{Slug: slug, Until: time.Now().Add(4 * time.Second), Tail: tail}
		case "de":
			return &supervisor.BootError{Slug: slug, Tail: []string{"Traceback (most recent call last):"}, Err: errors.New("did not listen within 60s")}
		}
		return nil
	}
	_, addr := startTestEngine(t, list, bs, 0)
	resp, b := pxGet(t, addr, "gh.localhost", "/", nil)
	page := string(b)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "ImportError: No module named &#39;&lt;settings&gt;&#39;") {
		t.Fatalf("backoff page: %d %s", resp.StatusCode, page)
	}
	if strings.Contains(page, "line 9\n") || !strings.Contains(page, "line 10\n") {
		t.Errorf("the page should show exactly the last 50 lines")
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Errorf("no Retry-After")
	}
	if want := `href="http://siteplex.localhost:` + addr[strings.LastIndexByte(addr, ':')+1:] + `/"`; !strings.Contains(page, want) {
		t.Errorf("the 502 page does not link to the index on the engine's port (%s): %s", want, page)
	}
	resp, b = pxGet(t, addr, "de.localhost", "/", nil)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(b), "Traceback") {
		t.Errorf("boot error page: %d %s", resp.StatusCode, b)
	}
}

func TestDialRetryReachesRestartedProcess(t *testing.T) {
	// The first address refuses connections (a process that just died);
	// the second is live: the request must succeed, body and all.
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	list := pxSites()
	bs := newBackends(t, list)
	live := bs.addr["gh"]
	var calls atomic.Int32
	e, addr := startTestEngine(t, list, bs, 0)
	e.acquire = func(ctx context.Context, r *siteRoute) (string, func(), error) {
		if calls.Add(1) == 1 {
			return deadAddr, func() {}, nil
		}
		return live, func() {}, nil
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/upload", strings.NewReader("payload"))
	req.Host = "gh.localhost"
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var up demosite.Upload
	if resp.StatusCode != 200 || json.Unmarshal(b, &up) != nil || up.Bytes != 7 {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
	if calls.Load() != 2 {
		t.Errorf("acquire called %d times, want 2", calls.Load())
	}
}

func TestRequestRecordsAndEvents(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	e, addr := startTestEngine(t, list, bs, 0)
	events, cancel := e.Subscribe()
	defer cancel()
	for range 3 {
		pxGet(t, addr, "gh.localhost", "/whoami", nil)
	}
	pxGet(t, addr, "de.localhost", "/missing", nil)
	// A record is written when the handler returns, just after the
	// client has the whole answer.
	recs := e.Requests(0)
	for deadline := time.Now().Add(5 * time.Second); len(recs) < 4 && time.Now().Before(deadline); recs = e.Requests(0) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(recs) != 4 {
		t.Fatalf("%d records, want 4", len(recs))
	}
	last := recs[3]
	if last.Site != "de" || last.Method != "GET" || last.Path != "/missing" || last.Status != 404 || last.Bytes == 0 {
		t.Errorf("last record %+v", last)
	}
	if got := e.Requests(2); len(got) != 2 || got[1] != last {
		t.Errorf("Requests(2) = %+v", got)
	}
	n := 0
	timeout := time.After(5 * time.Second)
	for n < 4 {
		select {
		case ev := <-events:
			if ev.Kind == EventRequest {
				n++
			}
		case <-timeout:
			t.Fatalf("got %d request events, want 4", n)
		}
	}
	st := e.Status()
	for _, s := range st.Sites {
		if s.Slug == "gh" && s.Requests != 3 {
			t.Errorf("gh requests = %d, want 3", s.Requests)
		}
	}
}

func TestSlowSubscriberDoesNotBlock(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	e, addr := startTestEngine(t, list, bs, 0)
	_, cancel := e.Subscribe() // never read
	defer cancel()
	for range 1100 {
		e.record(RequestRecord{Site: "gh"})
	}
	resp, _ := pxGet(t, addr, "gh.localhost", "/plain", nil)
	if resp.StatusCode != 200 {
		t.Fatal(resp.Status)
	}
	if n := len(e.Requests(0)); n != maxRequests {
		t.Errorf("%d records kept, want %d", n, maxRequests)
	}
}

func TestEngineNoticesSiteIDEditedInEnvFile(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	p := pxProject(t)
	p.Env.Path = filepath.Join(p.Root, ".env-local")
	if err := os.WriteFile(p.Env.Path, []byte("# keep\nSITE_ID=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.Env.Values["SITE_ID"] = "1"
	e, err := New(Config{Config: supervisor.Config{Project: p}, Listen: []string{"127.0.0.1:0"}, LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
	if err != nil {
		t.Fatal(err)
	}
	e.acquire = func(ctx context.Context, r *siteRoute) (string, func(), error) {
		return bs.addr[r.site.Slug], func() {}, nil
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Close(context.Background())
	if e.Status().ForcedSiteID != 1 {
		t.Fatalf("forced at start = %d", e.Status().ForcedSiteID)
	}
	// Use without a file change is kept across polls.
	if err := e.Use(context.Background(), 6); err != nil {
		t.Fatal(err)
	}
	time.Sleep(pollInterval + 500*time.Millisecond)
	if got := e.Status().ForcedSiteID; got != 6 {
		t.Fatalf("after Use(6) and a poll: forced %d", got)
	}
	if err := os.WriteFile(p.Env.Path, []byte("# keep\nSITE_ID=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * pollInterval)
	for time.Now().Before(deadline) && e.Status().ForcedSiteID != 2 {
		time.Sleep(100 * time.Millisecond)
	}
	_, b := pxGet(t, e.Addrs()[0], "localhost", "/whoami", nil)
	if w := pxWhoami(t, b); w.SiteID != "2" {
		t.Errorf("after SITE_ID=2 in the env file, localhost reached %s", w.SiteID)
	}
}

// TestEngineSaysWhySitesAreMissing: with the database down when the engine
// starts, /api/status, the index page (HTML and JSON) and the 404 for a
// site's domain say the sites could not be read, why, and that siteplex
// tries again; once a read works, the error is gone and the domain routes.
func TestEngineSaysWhySitesAreMissing(t *testing.T) {
	dir := t.TempDir()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("database = \"postgres://siteplex@127.0.0.1:%d/shop?connect_timeout=5&sslmode=disable\"\n", port)
	if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := sites.Load(sites.Options{Project: dir})
	if err != nil {
		t.Fatal(err)
	}
	list := pxSites()
	bs := newBackends(t, list)
	var up atomic.Bool
	read := projectSites(p)
	e, err := New(Config{Config: supervisor.Config{Project: p}, Listen: []string{"127.0.0.1:0"},
		LoadSites: func(ctx context.Context) ([]sites.Site, error) {
			if up.Load() {
				return list, nil
			}
			return read(ctx) // the real reader, against a port nothing listens on
		}})
	if err != nil {
		t.Fatal(err)
	}
	e.acquire = bs.acquire
	addr := startEngine(t, e)
	addrPort := fmt.Sprint(port)

	var st Status
	_, b := pxGet(t, addr, IndexHost, "/api/status", nil)
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.SitesError, "loading sites") || !strings.Contains(st.SitesError, addrPort) || !strings.Contains(st.SitesError, "tries again every 3s") {
		t.Errorf("/api/status sites_error = %q", st.SitesError)
	}
	_, b = pxGet(t, addr, IndexHost, "/", nil)
	if page := string(b); !strings.Contains(page, "siteplex could not read the sites") || !strings.Contains(page, addrPort) || strings.Contains(page, "No sites yet") {
		t.Errorf("index page:\n%s", page)
	}
	var idx Index
	_, b = pxGet(t, addr, IndexHost, "/", map[string]string{"Accept": "application/json"})
	if err := json.Unmarshal(b, &idx); err != nil || idx.SitesError != st.SitesError {
		t.Errorf("index JSON: %v %s", err, b)
	}
	resp, b := pxGet(t, addr, "example.gh", "/", nil)
	// A foreign Host (possibly a DNS-rebinding page) learns that the sites
	// could not be read, not the error: it names the database's address.
	if page := string(b); resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "siteplex could not read the sites") || strings.Contains(page, addrPort) || !strings.Contains(page, "tries again") {
		t.Errorf("example.gh while the database is down: HTTP %d\n%s", resp.StatusCode, page)
	}

	up.Store(true)
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, b = pxGet(t, addr, IndexHost, "/api/status", nil)
	if strings.Contains(string(b), "sites_error") {
		t.Errorf("/api/status after a read worked: %s", b)
	}
	if resp, b := pxGet(t, addr, "example.gh", "/", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("example.gh once the sites are read: HTTP %d %s", resp.StatusCode, b)
	}
	resp, b = pxGet(t, addr, "unknown.example", "/", nil)
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(b), "could not read") {
		t.Errorf("an unknown name once the sites are read: HTTP %d %s", resp.StatusCode, b)
	}
}
