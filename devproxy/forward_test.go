package devproxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/siteplex/siteplex/sites"
)

// seenHeaders is what the header-echo backend reports.
type seenHeaders struct {
	Host   string              `json:"host"`
	Header map[string][]string `json:"header"`
}

// headerBackend answers every request, and every WebSocket's first
// message, with the Host and headers it got.
func headerBackend(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/ws", websocket.Handler(func(ws *websocket.Conn) {
		r := ws.Request()
		_ = websocket.JSON.Send(ws, seenHeaders{Host: r.Host, Header: r.Header})
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(seenHeaders{Host: r.Host, Header: r.Header})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// spoofed are forwarding headers a client sends to lie about earlier hops.
var spoofed = map[string]string{
	"X-Forwarded-For":    "203.0.113.9",
	"X-Forwarded-Host":   "evil.example",
	"X-Forwarded-Proto":  "https",
	"X-Forwarded-Port":   "443",
	"X-Forwarded-Prefix": "/evil",
	"X-Real-Ip":          "203.0.113.9",
	"Forwarded":          "for=203.0.113.9;proto=https;host=evil.example",
}

func TestXForwardedPolicy(t *testing.T) {
	list := []sites.Site{{ID: 1, Slug: "h", Domain: "h.example", LocalDomain: "h.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"h": headerBackend(t)}}
	_, addr := startTestEngine(t, list, bs, 0)

	check := func(t *testing.T, got seenHeaders, host string) {
		t.Helper()
		if got.Host != host {
			t.Errorf("Host %q, want the client's %q", got.Host, host)
		}
		want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": host, "X-Forwarded-Proto": "http"}
		for k, v := range want {
			if vs := got.Header[k]; len(vs) != 1 || vs[0] != v {
				t.Errorf("%s = %q, want exactly %q", k, vs, v)
			}
		}
		for _, k := range []string{"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Real-Ip", "Forwarded"} {
			if vs, ok := got.Header[k]; ok {
				t.Errorf("the client's %s reached the process: %q", k, vs)
			}
		}
	}
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			var body io.Reader
			if method == "POST" {
				body = strings.NewReader("a=1")
			}
			req, _ := http.NewRequest(method, "http://"+addr+"/", body)
			req.Host = "h.localhost:8080"
			for k, v := range spoofed {
				req.Header.Set(k, v)
			}
			req.Header.Add("X-Forwarded-For", "198.51.100.1")
			resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got seenHeaders
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			check(t, got, "h.localhost:8080")
		})
	}
	t.Run("WebSocket", func(t *testing.T) {
		hdr := http.Header{}
		for k, v := range spoofed {
			hdr.Set(k, v)
		}
		ws := dialWebSocket(t, addr, "h.localhost", hdr)
		defer ws.Close()
		var got seenHeaders
		if err := websocket.JSON.Receive(ws, &got); err != nil {
			t.Fatal(err)
		}
		check(t, got, "h.localhost")
	})
}

// TestServerLimits: a head that is too big, a head sent too slowly and a
// body that trickles are cut off (the limits are shortened for the test).
func TestServerLimits(t *testing.T) {
	list := []sites.Site{{ID: 1, Slug: "h", Domain: "h.example", LocalDomain: "h.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"h": headerBackend(t)}}
	e := newTestEngine(t, list, bs, 0)
	e.lim.readHeader = 300 * time.Millisecond
	e.lim.bodyStall = 300 * time.Millisecond
	e.lim.bodyMinRate = 1000
	addr := startEngine(t, e)

	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	status := func(br *bufio.Reader) int {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("head too big", func(t *testing.T) {
		c, br := dial()
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: h.localhost\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 100<<10))
		line, _ := br.ReadString('\n')
		if !strings.Contains(line, " 431 ") {
			t.Errorf("a 100 KiB head: %q, want 431", line)
		}
	})
	t.Run("head too slow", func(t *testing.T) {
		c, br := dial()
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: h.localhost\r\n")
		start := time.Now()
		_, err := br.ReadString('\n')
		if err == nil || time.Since(start) > 5*time.Second {
			t.Errorf("an unfinished head was not cut off: %v after %s", err, time.Since(start))
		}
	})
	t.Run("body stalls", func(t *testing.T) {
		c, br := dial()
		fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: h.localhost\r\nContent-Length: 100\r\n\r\nonly ten b")
		if code := status(br); code != http.StatusRequestTimeout {
			t.Errorf("a stalled body: %d, want 408", code)
		}
	})
	t.Run("body trickles", func(t *testing.T) {
		c, br := dial()
		fmt.Fprint(c, "POST / HTTP/1.1\r\nHost: h.localhost\r\nContent-Length: 100000\r\n\r\n")
		done := make(chan struct{})
		go func() {
			defer close(done)
			// One byte every 50 ms: never 300 ms without a byte, but far
			// below 1,000 bytes a second.
			for range 200 {
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
		if code := status(br); code != http.StatusRequestTimeout {
			t.Errorf("a trickling body: %d, want 408", code)
		}
		c.Close()
		<-done
	})
	t.Run("a healthy slow upload passes", func(t *testing.T) {
		pr, pw := io.Pipe()
		go func() {
			for range 5 {
				_, _ = pw.Write([]byte(strings.Repeat("y", 500)))
				time.Sleep(100 * time.Millisecond)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", "http://"+addr+"/", pr)
		req.Host = "h.localhost"
		req.ContentLength = 2500
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}
