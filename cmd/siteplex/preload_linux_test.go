package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy"
)

func TestEngineConfigPreload(t *testing.T) {
	tests := []struct {
		name, toml string
		args       []string
		want       bool
	}{
		{"default", "", nil, false},
		{"flag", "", []string{"--preload"}, true},
		{"config", "preload = true\n", nil, true},
		{"flag over config", "preload = true\n", []string{"--preload=false"}, false},
		{"config off", "preload = false\n", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := engineConfigFor(t, tt.toml, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Preload != tt.want {
				t.Errorf("Preload = %v, want %v", cfg.Preload, tt.want)
			}
		})
	}
	if _, err := engineConfigFor(t, "", "--preload=maybe"); err == nil {
		t.Error("--preload=maybe accepted")
	}
}

// serveStatus reads the engine's GET /api/status.
func serveStatus(t *testing.T, addr string) devproxy.Status {
	t.Helper()
	code, b := httpGet(t, addr, "siteplex.localhost", "/api/status")
	var st devproxy.Status
	if code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("/api/status: %d %s", code, b)
	}
	return st
}

// A custom command cannot be preloaded: serve says why on stderr and in
// /api/status, and starts the sites the plain way.
func TestServePreloadRefusesACustomCommand(t *testing.T) {
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	sp := startServe(t, bin, dir, "--preload")
	if code, b := httpGet(t, sp.addr, "one.localhost", "/whoami"); code != 200 || !bytes.Contains(b, []byte(`"site_id":"1"`)) {
		t.Errorf("one.localhost: %d %s", code, b)
	}
	const want = "siteplex: cannot preload: the command is " + "%s demo-site --port {port} --site {slug} --site-id {site_id} (--command or process.command in siteplex.toml); preload forks only Django's runserver, <python> manage.py runserver 127.0.0.1:{port} --noreload; site processes start the plain way\n"
	if line := strings.ReplaceAll(want, "%s", bin); !strings.Contains(sp.stderr.String(), line) {
		t.Errorf("stderr lacks %q:\n%s", line, sp.stderr.String())
	}
	st := serveStatus(t, sp.addr)
	if st.Preload == nil || st.Preload.On || !strings.Contains(st.Preload.Reason, "preload forks only Django's runserver") {
		t.Errorf("/api/status preload: %+v", st.Preload)
	}
	for _, s := range st.Sites {
		if s.Preloaded {
			t.Errorf("%s: %+v, want a plain process", s.Slug, s)
		}
	}
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(f) > 0 && f[0] != "Z"
}

// The real binary with --preload: the sites are forked from one warm
// parent, and SIGKILL of siteplex leaves none of them alive after 5 s.
func TestServePreloadDjangoThenSIGKILL(t *testing.T) {
	bin := buildSiteplex(t)
	root := copyDjango(t)
	sp := startServe(t, bin, root, "--preload", "--command", "/usr/bin/python3 manage.py runserver 127.0.0.1:{port} --noreload")
	st := serveStatus(t, sp.addr)
	for _, s := range st.Sites {
		code, b := httpGet(t, sp.addr, s.Domain, "/whoami/")
		var w struct {
			SiteID int64 `json:"site_id"`
		}
		if code != 200 || json.Unmarshal(b, &w) != nil || w.SiteID != s.ID {
			t.Errorf("Host %s: %d %.200s (want SITE_ID %d)", s.Domain, code, b, s.ID)
		}
	}
	st = serveStatus(t, sp.addr)
	if st.Preload == nil || !st.Preload.On || st.Preload.ParentPID == 0 {
		t.Fatalf("/api/status preload: %+v; stderr:\n%s", st.Preload, sp.stderr.String())
	}
	pids := []int{st.Preload.ParentPID}
	for _, s := range st.Sites {
		if !s.Preloaded || s.PID == 0 {
			t.Errorf("%s: %+v, want a preloaded process", s.Slug, s)
		}
		pids = append(pids, s.PID)
	}
	if strings.Contains(sp.stderr.String(), "cannot preload") {
		t.Errorf("stderr:\n%s", sp.stderr.String())
	}
	if err := sp.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sp.cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("pid %d alive 5 s after siteplex was SIGKILLed (warm parent and children: %v)", pid, pids)
		}
	}
}
