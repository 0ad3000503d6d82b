package devproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siteplex/siteplex/sites"
)

// frontBackend is a real backend with one answer per path, counting its
// connections.
func frontBackend(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cl":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part1-")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/hints":
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "hinted")
		case "/big":
			io.WriteString(w, strings.Repeat("x", 200<<10))
		case "/post":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %d", r.Method, len(b))
		default: // echo
			_ = json.NewEncoder(w).Encode(map[string]any{"headers": r.Header, "host": r.Host, "uri": r.RequestURI, "method": r.Method})
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// closingBackend answers every request with a body that ends when it
// closes the connection (no Content-Length, no chunking).
func closingBackend(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close")
			}()
		}
	}()
	return ln.Addr().String()
}

// rawExchange writes raw to a new connection to addr and reads n answers
// (methods[i] tells ReadResponse whether answer i has a body).
func rawExchange(t *testing.T, addr, raw string, methods ...string) ([]*http.Response, []string, *bufio.Reader, net.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for _, m := range methods {
		resp, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			t.Fatalf("answer %d: %v", len(resps)+1, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer %d body: %v", len(resps)+1, err)
		}
		resps = append(resps, resp)
		bodies = append(bodies, string(b))
	}
	return resps, bodies, br, c
}

func get(path, host string, extra ...string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + strings.Join(extra, "") + "\r\n"
}

func TestFrontEnd(t *testing.T) {
	srv, conns := frontBackend(t)
	list := []sites.Site{
		{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true},
		{ID: 2, Slug: "eof", Domain: "eof.example", LocalDomain: "eof.localhost", Enabled: true},
	}
	bs := &backendSet{addr: map[string]string{"s": srv.Listener.Addr().String(), "eof": closingBackend(t)}}
	e, addr := startTestEngine(t, list, bs, 0)
	front := e.fronts[0]
	const host = "s.localhost"
	big := "X-Big: " + strings.Repeat("b", 5000) + "\r\n"

	tests := []struct {
		name    string
		raw     string
		methods []string
		// want: status and body per answer ("" = don't care about body).
		status []int
		bodies []string
		// fast and handed: how many requests the fast path served and
		// whether the connection went to net/http.
		fast   int64
		handed int64
		// closed: the proxy closes the connection after the answers.
		closed bool
		check  func(t *testing.T, resps []*http.Response, bodies []string)
	}{
		{name: "keep-alive sequence", raw: get("/cl", host) + get("/cl", host) + get("/cl", host),
			methods: []string{"GET", "GET", "GET"}, status: []int{200, 200, 200},
			bodies: []string{"hello", "hello", "hello"}, fast: 3},
		{name: "pipelined mixed answers", raw: get("/cl", host) + get("/chunked", host) + "HEAD /cl HTTP/1.1\r\nHost: s.localhost\r\n\r\n" + get("/304", host) + get("/204", host) + get("/big", host),
			methods: []string{"GET", "GET", "HEAD", "GET", "GET", "GET"}, status: []int{200, 200, 200, 304, 204, 200},
			bodies: []string{"hello", "part1-part2", "", "", "", strings.Repeat("x", 200<<10)}, fast: 6,
			check: func(t *testing.T, resps []*http.Response, _ []string) {
				if resps[1].Trailer.Get("X-Sum") != "42" || len(resps[1].TransferEncoding) == 0 {
					t.Errorf("chunked answer: TE %v trailer %v", resps[1].TransferEncoding, resps[1].Trailer)
				}
				if resps[2].ContentLength != 5 {
					t.Errorf("HEAD Content-Length = %d, want 5", resps[2].ContentLength)
				}
				if resps[3].Header.Get("ETag") != `"v1"` {
					t.Errorf("304 headers %v", resps[3].Header)
				}
			}},
		{name: "backend closes its connection", raw: get("/close", host) + get("/cl", host),
			methods: []string{"GET", "GET"}, status: []int{200, 200}, bodies: []string{"bye", "hello"}, fast: 2,
			check: func(t *testing.T, resps []*http.Response, _ []string) {
				if resps[0].Close {
					t.Error("the backend's Connection: close reached the client")
				}
			}},
		{name: "1xx answers are dropped", raw: get("/hints", host), methods: []string{"GET"},
			status: []int{200}, bodies: []string{"hinted"}, fast: 1},
		{name: "body until the backend closes", raw: get("/", "eof.localhost"), methods: []string{"GET"},
			status: []int{200}, bodies: []string{"until-close"}, fast: 1, closed: true},
		{name: "client Connection: close", raw: get("/cl", host, "Connection: close\r\n"), methods: []string{"GET"},
			status: []int{200}, bodies: []string{"hello"}, fast: 1, closed: true,
			check: func(t *testing.T, resps []*http.Response, _ []string) {
				if !resps[0].Close {
					t.Error("answer lacks Connection: close")
				}
			}},
		{name: "header over 4 KiB falls back", raw: get("/cl", host) + get("/", host, big) + get("/cl", host),
			methods: []string{"GET", "GET", "GET"}, status: []int{200, 200, 200}, fast: 1, handed: 1,
			check: func(t *testing.T, _ []*http.Response, bodies []string) {
				if !strings.Contains(bodies[1], strings.Repeat("b", 5000)) {
					t.Error("the big header did not reach the backend")
				}
			}},
		{name: "body falls back", raw: "POST /post HTTP/1.1\r\nHost: s.localhost\r\nContent-Length: 3\r\n\r\nabc" + get("/cl", host),
			methods: []string{"POST", "GET"}, status: []int{200, 200}, bodies: []string{"POST 3", "hello"}, handed: 1},
		{name: "index falls back", raw: get("/", "nowhere.example"), methods: []string{"GET"}, status: []int{404}, handed: 1,
			check: func(t *testing.T, _ []*http.Response, bodies []string) {
				if !strings.Contains(bodies[0], "siteplex") {
					t.Errorf("not the index: %.100s", bodies[0])
				}
			}},
		{name: "absolute form falls back", raw: "GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n",
			methods: []string{"GET"}, status: []int{403}, handed: 1},
		{name: "HTTP/1.0 falls back", raw: "GET /cl HTTP/1.0\r\nHost: s.localhost\r\n\r\n",
			methods: []string{"GET"}, status: []int{200}, bodies: []string{"hello"}, handed: 1, closed: true},
		{name: "X-Forwarded-* and hop-by-hop", raw: get("/p?q=1", "S.Example:8000",
			"Connection: X-Hop\r\nX-Hop: no\r\nKeep-Alive: 5\r\nProxy-Authorization: s\r\nTE: trailers\r\n",
			"X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Host: spoof\r\nForwarded: for=x\r\nX-Multi: a\r\nX-Multi: b\r\n"),
			methods: []string{"GET"}, status: []int{200}, fast: 1,
			check: func(t *testing.T, _ []*http.Response, bodies []string) {
				var got struct {
					Headers http.Header
					Host    string
					URI     string
				}
				if err := json.Unmarshal([]byte(bodies[0]), &got); err != nil {
					t.Fatal(err)
				}
				h := got.Headers
				if got.Host != "S.Example:8000" || got.URI != "/p?q=1" {
					t.Errorf("backend saw Host %q URI %q", got.Host, got.URI)
				}
				for _, k := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization", "Te", "Connection", "Forwarded"} {
					if h.Get(k) != "" {
						t.Errorf("%s reached the backend", k)
					}
				}
				if h.Get("X-Forwarded-For") != "10.0.0.1, 10.0.0.2, 127.0.0.1" || h.Get("X-Forwarded-Host") != "S.Example:8000" ||
					h.Get("X-Forwarded-Proto") != "http" || len(h.Values("X-Forwarded-Host")) != 1 {
					t.Errorf("X-Forwarded-* = %q %q %q", h.Values("X-Forwarded-For"), h.Values("X-Forwarded-Host"), h.Get("X-Forwarded-Proto"))
				}
				if strings.Join(h.Values("X-Multi"), ",") != "a,b" {
					t.Errorf("X-Multi = %v", h.Values("X-Multi"))
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fast0, handed0 := front.fast.Load(), front.handed.Load()
			resps, bodies, br, c := rawExchange(t, addr, tc.raw, tc.methods...)
			for i, resp := range resps {
				if resp.StatusCode != tc.status[i] {
					t.Errorf("answer %d: status %d, want %d (%s)", i+1, resp.StatusCode, tc.status[i], bodies[i])
				}
				if i < len(tc.bodies) && tc.bodies[i] != "" && bodies[i] != tc.bodies[i] {
					t.Errorf("answer %d: body %.60q, want %.60q", i+1, bodies[i], tc.bodies[i])
				}
			}
			if tc.check != nil {
				tc.check(t, resps, bodies)
			}
			if !tc.closed {
				// The connection still serves requests.
				io.WriteString(c, get("/cl", host))
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("connection not reusable: %v", err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				tc.fast++
				if tc.handed > 0 {
					tc.fast-- // served by net/http
				}
			} else {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if n, err := br.Read(make([]byte, 1)); err != io.EOF {
					t.Errorf("connection not closed: %d, %v", n, err)
				}
			}
			if got := front.fast.Load() - fast0; got != tc.fast {
				t.Errorf("fast path served %d requests, want %d", got, tc.fast)
			}
			if got := front.handed.Load() - handed0; got != tc.handed {
				t.Errorf("%d connections handed to net/http, want %d", got, tc.handed)
			}
		})
	}
	if n := conns.Load(); n > 4 {
		t.Errorf("the backend saw %d connections; pooled keep-alive should need few", n)
	}
}

func TestFrontEndRecordsRequests(t *testing.T) {
	srv, _ := frontBackend(t)
	list := []sites.Site{{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"s": srv.Listener.Addr().String()}}
	e, addr := startTestEngine(t, list, bs, 0)
	events, cancel := e.Subscribe()
	defer cancel()
	states, cancelStates := e.Subscribe(EventState, EventError)
	defer cancelStates()
	rawExchange(t, addr, get("/cl?x=1", "s.localhost")+"HEAD /a%20b HTTP/1.1\r\nHost: s.localhost\r\n\r\n"+get("/304", "s.localhost"), "GET", "HEAD", "GET")
	want := []struct {
		method, path string
		status       int
		bytes        int64
	}{{"GET", "/cl", 200, 5}, {"HEAD", "/a b", 200, 0}, {"GET", "/304", 304, 0}}
	var got []RequestRecord
	deadline := time.After(5 * time.Second)
	for len(got) < len(want) {
		select {
		case ev := <-events:
			if ev.Kind == EventRequest {
				got = append(got, ev.Request)
			}
		case <-deadline:
			t.Fatalf("got %d request events, want %d", len(got), len(want))
		}
	}
	for i, w := range want {
		g := got[i]
		if g.Site != "s" || g.Method != w.method || g.Path != w.path || g.Status != w.status || g.Bytes != w.bytes || g.Duration <= 0 || g.Time.IsZero() {
			t.Errorf("record %d = %+v, want %+v", i, g, w)
		}
	}
	// emit hands an event to every subscriber in one go: by now a
	// subscriber of other kinds would have had them too.
	for len(states) > 0 {
		if ev := <-states; ev.Kind != EventState && ev.Kind != EventError {
			t.Errorf("a subscriber of state and error events got a kind %d event", ev.Kind)
		}
	}
	if recs := e.Requests(0); len(recs) != 3 {
		t.Errorf("Requests kept %d records, want 3", len(recs))
	}
	if n := e.Status().Sites[0].Requests; n != 3 {
		t.Errorf("site request counter = %d, want 3", n)
	}
}

// A site whose process is gone: the fast path hands the request to
// net/http, which retries and renders the 502 page.
func TestFrontEndDeadBackendFallsBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	list := []sites.Site{{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"s": dead}}
	e, addr := startTestEngine(t, list, bs, 0)
	resps, bodies, _, _ := rawExchange(t, addr, get("/", "s.localhost"), "GET")
	if resps[0].StatusCode != http.StatusBadGateway || !strings.Contains(bodies[0], "not reachable") {
		t.Errorf("status %d body %.200s", resps[0].StatusCode, bodies[0])
	}
	if e.fronts[0].handed.Load() != 1 {
		t.Error("the request was not handed to net/http")
	}
}

// A pooled connection the backend closed while idle is replaced without
// the client noticing, still on the fast path.
func TestFrontEndStalePooledConnection(t *testing.T) {
	srv, conns := frontBackend(t)
	srv.Config.SetKeepAlivesEnabled(true)
	list := []sites.Site{{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"s": srv.Listener.Addr().String()}}
	e, addr := startTestEngine(t, list, bs, 0)
	for i := range 3 {
		rawExchange(t, addr, get("/cl", "s.localhost"), "GET")
		srv.CloseClientConnections() // the backend drops the pooled connection
		_ = i
	}
	if got := e.fronts[0].fast.Load(); got != 3 {
		t.Errorf("fast path served %d of 3", got)
	}
	if conns.Load() < 3 {
		t.Errorf("backend saw %d connections; the stale ones were not replaced", conns.Load())
	}
}

func BenchmarkFrontEndParse(b *testing.B) {
	head := []byte("GET /plain?x=1 HTTP/1.1\r\nHost: bench.localhost\r\nUser-Agent: wrk\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n")
	fc := &frontConn{}
	b.ReportAllocs()
	for b.Loop() {
		if !fc.parseRequest(head) {
			b.Fatal("not eligible")
		}
	}
}

// A client that hangs up while the backend is still silent: the fast path
// notices within about a second, closes the backend connection (the
// handler's context ends) and records a 499.
func TestFrontEndClientGoesAwayWhileBackendSilent(t *testing.T) {
	cancelled := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			cancelled <- struct{}{}
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	list := []sites.Site{{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"s": srv.Listener.Addr().String()}}
	e, addr := startTestEngine(t, list, bs, 0)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, get("/slow", "s.localhost"))
	time.Sleep(200 * time.Millisecond)
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend request was not cancelled after the client left")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := e.Requests(0)
		if len(recs) == 1 && recs[0].Status == 499 && recs[0].Path == "/slow" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records = %+v, want one 499 for /slow", recs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if e.fronts[0].handed.Load() != 0 {
		t.Error("the request was handed to net/http")
	}
}

// Close lets a request in progress on the front end finish, closes idle
// keep-alive connections, and returns promptly.
func TestFrontEndGracefulClose(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		io.WriteString(w, "done")
	}))
	t.Cleanup(srv.Close)
	list := []sites.Site{{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"s": srv.Listener.Addr().String()}}
	e, addr := startTestEngine(t, list, bs, 0)

	_, _, idleBR, _ := rawExchange(t, addr, get("/", "s.localhost"), "GET") // stays open, idle
	slow, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, get("/slow", "s.localhost"))
	time.Sleep(100 * time.Millisecond) // the request is at the backend

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Close took %s", d)
	}
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(slow), nil)
	if err != nil {
		t.Fatalf("the request in progress was cut: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "done" {
		t.Errorf("body %q", b)
	}
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection not closed: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting after Close")
	}
}
