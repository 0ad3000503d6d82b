package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// tmuxSession runs a command in a detached tmux session on a private
// server, for driving the real terminal UI like a user.
type tmuxSession struct {
	t      *testing.T
	socket string
}

func (s *tmuxSession) tmux(args ...string) (string, error) {
	out, err := exec.Command("tmux", append([]string{"-L", s.socket}, args...)...).CombinedOutput()
	return string(out), err
}

func (s *tmuxSession) keys(keys ...string) {
	s.t.Helper()
	if out, err := s.tmux(append([]string{"send-keys", "-t", "demo"}, keys...)...); err != nil {
		s.t.Fatalf("tmux send-keys %v: %v: %s", keys, err, out)
	}
}

func (s *tmuxSession) screen() string {
	out, _ := s.tmux("capture-pane", "-t", "demo", "-p")
	return out
}

// waitScreen polls the pane until re matches, and returns the submatches.
func (s *tmuxSession) waitScreen(what string, re *regexp.Regexp) []string {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		scr := s.screen()
		if m := re.FindStringSubmatch(scr); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s (%s); the screen:\n%s", what, re, scr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExit waits until the pane's command wrote its exit status to
// exitFile and fails unless it is 0.
func (s *tmuxSession) waitExit(what, exitFile string) {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(exitFile)
		if code := strings.TrimSpace(string(b)); err == nil && code != "" {
			if code != "0" {
				s.t.Fatalf("%s exited with %s; screen:\n%s", what, code, s.screen())
			}
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not exit; screen:\n%s", what, s.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDemoInTmux is the smoke test of `siteplex demo`: the real binary in
// a real (tmux) terminal of 100×30, driven by keys and a request through
// the proxy; q then y must exit 0 and leave no process and no folder.
func TestDemoInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		testenv.Missing(t, "tmux is not installed (apt-get install tmux): the terminal UI smoke test needs it")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command is not on PATH: cannot build siteplex for the tmux smoke test")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "siteplex")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building siteplex: %v\n%s", err, out)
	}

	s := &tmuxSession{t: t, socket: fmt.Sprintf("siteplex-test-%d", os.Getpid())}
	exitFile := filepath.Join(dir, "exit")
	script := fmt.Sprintf("%s demo --listen 127.0.0.1:0; echo $? > %s", bin, exitFile)
	if out, err := s.tmux("-f", "/dev/null", "new-session", "-d", "-s", "demo", "-x", "100", "-y", "30",
		"env", "-u", "NO_COLOR", "TERM=xterm-256color", "sh", "-c", script); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { _, _ = s.tmux("kill-server") })

	// The sites show, with the proxy's address and the demo folder.
	m := s.waitScreen("the sites", regexp.MustCompile(`(?s)proxy 127\.0\.0\.1:(\d+).*8\s+jp\s+Japan.*demo project in (\S+) `))
	port, demoDir := m[1], m[2]
	if _, err := os.Stat(demoDir); err != nil {
		t.Fatalf("demo folder %s: %v", demoDir, err)
	}
	for _, want := range []string{"★ 2  gh", "⚠ invalid domain", "– disabled", "○ stopped"} {
		if !strings.Contains(s.screen(), want) {
			t.Errorf("screen lacks %q:\n%s", want, s.screen())
		}
	}

	// Select gh, then make a request through the proxy: its process
	// starts and serves it, and the table says so.
	s.keys("j")
	s.waitScreen("gh selected", regexp.MustCompile(`›★ 2\s+gh`))
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:"+port+"/whoami", nil)
	req.Host = "gh.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("request through the proxy: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"site":"gh"`) {
		t.Fatalf("proxy answered %d: %s", resp.StatusCode, body)
	}
	s.waitScreen("gh running with one request", regexp.MustCompile(`›★ 2\s+gh\s.*● running\s+\d+\s+1\s*\n`))
	s.waitScreen("its output in the logs pane", regexp.MustCompile(`demo-site: gh listening on 127\.0\.0\.1:\d+`))

	// The Requests tab shows the request.
	s.keys("Tab", "Tab")
	s.waitScreen("the request", regexp.MustCompile(`GET\s+/whoami\s+200`))

	// q asks (a process runs), y quits.
	s.keys("q")
	s.waitScreen("the question", regexp.MustCompile(`1 process is running\. Quit and stop them\? \(y/n\)`))
	s.keys("y")
	s.waitExit("siteplex demo", exitFile)
	if left := processesOf(bin); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	if _, err := os.Stat(demoDir); !os.IsNotExist(err) {
		t.Errorf("demo folder %s still there (%v)", demoDir, err)
	}
}

// processesOf lists the running processes whose command line starts with
// bin.
func processesOf(bin string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.HasPrefix(string(b), bin+"\x00") {
			continue
		}
		out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}
