package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestServeAndUIShareOneEngine: with `siteplex serve` running for a
// project, a second serve is refused (exit 1, naming the first) and leaves
// the first's engine.json alone, and `siteplex` in another terminal (tmux)
// attaches to that engine: it shows the site serve started, follows its
// requests live, and quits without stopping anything.
func TestServeAndUIShareOneEngine(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		testenv.Missing(t, "tmux is not installed (apt-get install tmux): the terminal UI test needs it")
	}
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	sp := startServe(t, bin, dir)
	enginePath := filepath.Join(dir, ".siteplex", "engine.json")
	before, err := os.ReadFile(enginePath)
	if err != nil {
		t.Fatal(err)
	}
	if code, b := httpGet(t, sp.addr, "two.localhost", "/whoami"); code != 200 {
		t.Fatalf("two.localhost through serve: %d %s", code, b)
	}

	// A second serve is refused and names the first.
	second := exec.Command(bin, "serve", "--project", dir, "--listen", "127.0.0.1:0")
	var stderr strings.Builder
	second.Stderr = &stderr
	err = second.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("a second serve: %v, want exit 1; stderr:\n%s", err, stderr.String())
	}
	for _, want := range []string{"already runs", "pid " + strconv.Itoa(sp.cmd.Process.Pid), sp.addr} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the refusal lacks %q: %s", want, stderr.String())
		}
	}
	if after, err := os.ReadFile(enginePath); err != nil || string(after) != string(before) {
		t.Fatalf("engine.json changed by the refused serve: %v\n%s", err, after)
	}

	// The UI attaches.
	s := &tmuxSession{t: t, socket: fmt.Sprintf("siteplex-attach-%d", os.Getpid())}
	exitFile := filepath.Join(t.TempDir(), "exit")
	script := fmt.Sprintf("%s --project %s; echo $? > %s", bin, dir, exitFile)
	if out, err := s.tmux("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "120", "-y", "30",
		"env", "-u", "NO_COLOR", "TERM=xterm-256color", "DATABASE_URL=", "SITEPLEX_DATABASE_URL=", "sh", "-c", script); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = s.tmux("kill-server") })
	s.waitScreen("the header names serve", regexp.MustCompile(`proxy (127\.0\.0\.1)?:\d+ · serve pid `+strconv.Itoa(sp.cmd.Process.Pid)))
	s.waitScreen("two running with one request", regexp.MustCompile(`2\s+two\s.*● running\s+\d+\s+1\s*\n`))
	// Requests show up live, through the event stream.
	for range 2 {
		if code, b := httpGet(t, sp.addr, "two.localhost", "/whoami"); code != 200 {
			t.Fatalf("two.localhost: %d %s", code, b)
		}
	}
	s.waitScreen("three requests", regexp.MustCompile(`2\s+two\s.*● running\s+\d+\s+3\s*\n`))

	// q quits at once; serve, its engine.json and site two go on.
	s.keys("q")
	s.waitExit("siteplex (attached)", exitFile)
	if after, err := os.ReadFile(enginePath); err != nil || string(after) != string(before) {
		t.Errorf("engine.json changed by the attached UI: %v\n%s", err, after)
	}
	code, b := httpGet(t, sp.addr, "siteplex.localhost", "/api/status")
	var st struct {
		Sites []struct {
			Slug  string `json:"slug"`
			State string `json:"state"`
		} `json:"sites"`
	}
	if code != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("status after the UI quit: %d %s", code, b)
	}
	for _, s := range st.Sites {
		if s.Slug == "two" && s.State != "running" {
			t.Errorf("site two is %s after the attached UI quit, want running", s.State)
		}
	}
}
