package devproxy

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestControlAPIGuards(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	e, addr := startTestEngine(t, list, bs, 0)
	port := addr[strings.LastIndexByte(addr, ':'):]
	call := func(method, host, path, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(`{"site_id": 2}`))
		req.Host = host
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	good := "Bearer " + e.Token()
	tests := []struct {
		name, method, host, path, auth string
		want                           int
	}{
		{"status", "GET", "siteplex.localhost", "/api/status", "", 200},
		{"status with port", "GET", "siteplex.localhost" + port, "/api/status", "", 200},
		{"status on localhost", "GET", "localhost", "/api/status", "", 200},
		{"status on 127.0.0.1", "GET", "127.0.0.1" + port, "/api/status", "", 200},
		{"status on ::1", "GET", "[::1]", "/api/status", "", 200},
		{"status foreign host", "GET", "evil.example", "/api/status", "", 404},
		{"status other loopback address", "GET", "127.0.0.2", "/api/status", "", 404},
		{"use foreign host with token", "POST", "evil.example", "/api/use", good, 404},
		{"use rebinding host with token", "POST", "attacker.localhost.evil.example", "/api/use", good, 404},
		{"events no token", "GET", "siteplex.localhost", "/api/events", "", 401},
		{"sites no token", "GET", "siteplex.localhost", "/api/sites", "", 401},
		{"logs no token", "GET", "siteplex.localhost", "/api/sites/gh/logs", "", 401},
		{"requests no token", "GET", "siteplex.localhost", "/api/requests", "", 401},
		{"sites", "GET", "siteplex.localhost", "/api/sites", good, 200},
		{"requests", "GET", "siteplex.localhost", "/api/requests?n=5", good, 200},
		{"logs", "GET", "siteplex.localhost", "/api/sites/gh/logs?n=5", good, 200},
		{"logs unknown site", "GET", "siteplex.localhost", "/api/sites/nope/logs", good, 404},
		{"POST on sites", "POST", "siteplex.localhost", "/api/sites", good, 405},
		{"use no token", "POST", "siteplex.localhost", "/api/use", "", 401},
		{"use wrong token", "POST", "siteplex.localhost", "/api/use", "Bearer nope", 401},
		{"use basic auth", "POST", "siteplex.localhost", "/api/use", "Basic " + e.Token(), 401},
		{"reload no token", "POST", "siteplex.localhost", "/api/reload", "", 401},
		{"start no token", "POST", "siteplex.localhost", "/api/sites/gh/start", "", 401},
		{"use", "POST", "siteplex.localhost", "/api/use", good, 200},
		{"reload", "POST", "siteplex.localhost" + port, "/api/reload", good, 200},
		{"unknown site", "POST", "siteplex.localhost", "/api/sites/nope/start", good, 404},
		{"unknown action", "POST", "siteplex.localhost", "/api/sites/gh/explode", good, 404},
		{"GET on use", "GET", "siteplex.localhost", "/api/use", good, 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := call(tt.method, tt.host, tt.path, tt.auth); got != tt.want {
				t.Errorf("%s %s (Host %s) = %d, want %d", tt.method, tt.path, tt.host, got, tt.want)
			}
		})
	}
	if e.Status().ForcedSiteID != 2 {
		t.Errorf("POST /api/use did not force site 2")
	}
	if n := bs.total(); n != 0 {
		t.Errorf("API calls reached backends %d times", n)
	}
}

func TestEngineFileAndClient(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	e, _ := startTestEngine(t, list, bs, 0)
	dir := e.cfg.Project.StateDir()
	fi, err := os.Stat(filepath.Join(dir, EngineFileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("engine.json mode %v, want 0600", fi.Mode().Perm())
	}
	ef, err := ReadEngineFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ef.PID != os.Getpid() || ef.Token != e.Token() || len(ef.Listen) != 1 || ef.Listen[0] != e.Addrs()[0] || ef.Kind != KindUI {
		t.Errorf("engine.json = %+v", ef)
	}
	if msg := (&RunningError{Engine: *ef}).Error(); !strings.HasPrefix(msg, "the siteplex UI (pid ") {
		t.Errorf("a second engine is told %q", msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := NewClient(ef)
	if err := c.Use(ctx, 6); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ForcedSiteID != 6 || st.Mode != PerSite || len(st.Sites) != 4 {
		t.Errorf("status = %+v", st)
	}
	if err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Use(ctx, 42); err == nil || !strings.Contains(err.Error(), "42") {
		t.Errorf("Use(42) = %v, want an unknown-site error", err)
	}
	if err := c.SiteAction(ctx, "nope", "start"); err == nil {
		t.Errorf("SiteAction(nope) succeeded")
	}
	bad := *ef
	bad.Token = "wrong"
	if err := NewClient(&bad).Reload(ctx); err == nil || !strings.Contains(err.Error(), "token") {
		t.Errorf("wrong token: %v", err)
	}

	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, EngineFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("engine.json still there after Close: %v", err)
	}
	if _, err := ReadEngineFile(dir); !errors.Is(err, ErrNoEngine) {
		t.Errorf("ReadEngineFile after Close = %v, want ErrNoEngine", err)
	}
	// A file left by a dead process counts as no engine.
	_ = os.WriteFile(filepath.Join(dir, EngineFileName), []byte(`{"pid": 999999999, "listen": ["127.0.0.1:1"], "token": "x"}`), 0o600)
	if _, err := ReadEngineFile(dir); !errors.Is(err, ErrNoEngine) {
		t.Errorf("stale engine.json: %v, want ErrNoEngine", err)
	}
}

func TestSecondEngineOnProjectRefused(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	first := newTestEngine(t, list, bs, 0)
	startEngine(t, first)
	dir := first.cfg.Project.StateDir()
	before, err := os.ReadFile(filepath.Join(dir, EngineFileName))
	if err != nil {
		t.Fatal(err)
	}
	second, err := New(Config{Config: first.cfg.Config, Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	err = second.Start(context.Background())
	var re *RunningError
	if !errors.As(err, &re) || re.Engine.PID != os.Getpid() || re.Engine.Listen[0] != first.Addrs()[0] {
		t.Fatalf("second Start = %v, want a RunningError naming the first engine", err)
	}
	if !strings.Contains(err.Error(), first.Addrs()[0]) || !strings.Contains(err.Error(), strconv.Itoa(os.Getpid())) {
		t.Errorf("the error does not name pid and address: %v", err)
	}
	if len(second.Addrs()) != 0 {
		t.Errorf("the refused engine bound %v", second.Addrs())
	}
	_ = second.Close(context.Background())
	after, err := os.ReadFile(filepath.Join(dir, EngineFileName))
	if err != nil || string(after) != string(before) {
		t.Errorf("engine.json changed under the first engine: %v\n%s\nwas\n%s", err, after, before)
	}
	// A stale file (its process is gone) is replaced.
	_ = first.Close(context.Background())
	_ = os.WriteFile(filepath.Join(dir, EngineFileName), []byte(`{"pid": 999999999, "listen": ["127.0.0.1:1"], "token": "x"}`), 0o600)
	third, err := New(Config{Config: first.cfg.Config, Listen: []string{"127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	startEngine(t, third)
	if ef, err := ReadEngineFile(dir); err != nil || ef.Token != third.Token() {
		t.Errorf("after a stale file: %+v %v", ef, err)
	}
}

func TestRemoteEngine(t *testing.T) {
	list := pxSites()
	bs := newBackends(t, list)
	e, addr := startTestEngine(t, list, bs, 0)
	ef, err := ReadEngineFile(e.cfg.Project.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	r := NewRemote(ef)
	defer r.Close(context.Background())
	ctx := context.Background()
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := r.Addrs(); len(got) != 1 || got[0] != addr {
		t.Errorf("Addrs = %v", got)
	}
	events, cancel := r.Subscribe(EventRequest, EventSites)
	defer cancel()
	// The stream is open once the engine counts the subscriber.
	for deadline := time.Now().Add(5 * time.Second); e.wanted.Load()&(1<<uint(EventRequest)) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the event stream did not subscribe")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pxGet(t, addr, "gh.localhost", "/whoami", nil)
	if err := r.Use(ctx, 6); err != nil {
		t.Fatal(err)
	}
	var gotReq, gotSites bool
	timeout := time.After(10 * time.Second)
	for !gotReq || !gotSites {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("the stream ended")
			}
			switch ev.Kind {
			case EventRequest:
				gotReq = ev.Request.Site == "gh" && ev.Request.Path == "/whoami" && ev.Request.Status == 200
			case EventSites:
				gotSites = true
			default:
				t.Errorf("an event of a kind not asked for: %+v", ev)
			}
		case <-timeout:
			t.Fatalf("events: request %v, sites %v", gotReq, gotSites)
		}
	}
	if st := r.Status(); st.ForcedSiteID != 6 || st.PID != os.Getpid() {
		t.Errorf("Status = %+v", st)
	}
	ss := r.Sites()
	if len(ss) != len(list) {
		t.Fatalf("Sites = %d sites, want %d", len(ss), len(list))
	}
	for i, s := range ss {
		if s.Slug != list[i].Slug || s.Forced != (s.ID == 6) || s.CanonicalAlias != list[i].CanonicalAlias {
			t.Errorf("site %d = %+v", i, s)
		}
	}
	if rs := r.Requests(10); len(rs) != 1 || rs[0].Path != "/whoami" {
		t.Errorf("Requests = %+v", rs)
	}
	if ls := r.Logs("gh", 10); ls == nil || len(ls) != 0 {
		t.Errorf("Logs = %#v, want an empty list", ls)
	}
	// The engine stops: the stream says so and ends.
	_ = e.Close(ctx)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Kind == EventError && !strings.Contains(ev.Err.Error(), "lost the siteplex engine") {
				t.Errorf("end of stream: %v", ev.Err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the stream did not end when the engine closed")
		}
	}
}
