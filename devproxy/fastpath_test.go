package devproxy

import (
	"encoding/json"
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

// echoBackend answers with the request's headers as JSON, sets a
// hop-by-hop header of its own and a trailer.
func echoBackend(t *testing.T, idle time.Duration) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := map[string]any{"headers": r.Header, "host": r.Host, "method": r.Method, "uri": r.RequestURI}
		w.Header().Set("Connection", "X-Backend-Hop")
		w.Header().Set("X-Backend-Hop", "must not pass")
		w.Header().Set("X-Backend-End", "passes")
		w.Header().Set("Trailer", "X-Checksum")
		_ = json.NewEncoder(w).Encode(hdr)
		w.Header().Set("X-Checksum", "abc")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.IdleTimeout = idle
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestFastPathHeaders(t *testing.T) {
	srv, conns := echoBackend(t, 0)
	list := []sites.Site{{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"s": srv.Listener.Addr().String()}}
	_, addr := startTestEngine(t, list, bs, 0)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	for i := range 5 {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/p?q=1", nil)
		req.Host = "S.Example:8000"
		req.Header.Set("Connection", "X-Client-Hop")
		req.Header.Set("X-Client-Hop", "must not pass")
		req.Header.Set("Keep-Alive", "timeout=5")
		req.Header.Set("Proxy-Authorization", "secret")
		req.Header.Set("X-Forwarded-For", "10.0.0.1")
		req.Header.Set("X-Forwarded-Host", "spoofed")
		req.Header.Add("X-Multi", "a")
		req.Header.Add("X-Multi", "b")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Headers http.Header
			Host    string
			URI     string
		}
		err = json.NewDecoder(resp.Body).Decode(&got)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			continue
		}
		h := got.Headers
		if got.Host != "S.Example:8000" || got.URI != "/p?q=1" {
			t.Errorf("backend saw Host %q URI %q", got.Host, got.URI)
		}
		for _, k := range []string{"X-Client-Hop", "Keep-Alive", "Proxy-Authorization"} {
			if h.Get(k) != "" {
				t.Errorf("hop-by-hop header %s reached the backend", k)
			}
		}
		if h.Get("X-Forwarded-For") != "10.0.0.1, 127.0.0.1" || h.Get("X-Forwarded-Host") != "S.Example:8000" || h.Get("X-Forwarded-Proto") != "http" {
			t.Errorf("X-Forwarded-* = %q %q %q", h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Host"), h.Get("X-Forwarded-Proto"))
		}
		if strings.Join(h.Values("X-Multi"), ",") != "a,b" {
			t.Errorf("X-Multi = %v", h.Values("X-Multi"))
		}
		if resp.Header.Get("X-Backend-Hop") != "" || resp.Header.Get("X-Backend-End") != "passes" {
			t.Errorf("response headers %v", resp.Header)
		}
		if resp.Trailer.Get("X-Checksum") != "abc" {
			t.Errorf("trailer = %v", resp.Trailer)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("5 sequential requests used %d backend connections, want 1 (keep-alive)", n)
	}
	// HEAD gets headers and no body, and the connection stays usable.
	req, _ := http.NewRequest(http.MethodHead, "http://"+addr+"/", nil)
	req.Host = "s.localhost"
	resp, err := client.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HEAD: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestFastPathBackendClosesIdleConnection(t *testing.T) {
	srv, _ := echoBackend(t, 50*time.Millisecond)
	list := []sites.Site{{ID: 1, Slug: "s", Domain: "s.example", LocalDomain: "s.localhost", Enabled: true}}
	bs := &backendSet{addr: map[string]string{"s": srv.Listener.Addr().String()}}
	_, addr := startTestEngine(t, list, bs, 0)
	for range 3 {
		resp, _ := pxGet(t, addr, "s.localhost", "/", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		time.Sleep(150 * time.Millisecond) // the backend drops the pooled connection
	}
}
