package tui

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"

	"github.com/siteplex/siteplex/sites"
)

// TestFlow drives the real bubbletea program (teatest) over the fake
// engine, a temporary project's env file and a temporary hosts file: what
// a user does in the first minute.
func TestFlow(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	envPath := filepath.Join(dir, ".env-local")
	if err := os.WriteFile(envPath, []byte("# local settings\nDEBUG=1\nSITE_ID=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eng := newFakeEngine(demoSites())
	eng.startDelay = 300 * time.Millisecond
	hs := tempHosts(dir)
	m := New(Options{
		Engine: eng, Hosts: hs, Project: "demo", Database: "sqlite db.sqlite3",
		Renderer: asciiRenderer(), NoTick: true,
		WriteForced: func(ctx context.Context, id int64) error {
			v := strconv.FormatInt(id, 10)
			_, err := sites.SaveEnvKey(ctx, envPath, "SITE_ID", &v)
			return err
		},
	})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	out := tm.Output()
	// WaitFor consumes what it reads: keep everything drawn so far, so a
	// frame that showed two things satisfies two waits.
	var seen []byte
	waitText := func(s string) {
		t.Helper()
		var last []byte
		teatest.WaitFor(t, out, func(b []byte) bool {
			last = b
			return bytes.Contains(seen, []byte(s)) || bytes.Contains(b, []byte(s))
		}, teatest.WithDuration(10*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
		seen = append(seen, last...)
	}
	waitFile := func(path, s string, present bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(path)
			if strings.Contains(string(b), s) == present {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: want %q present=%v, have:\n%s", path, s, present, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	waitText("example.jp")

	// Filter, select, force the site.
	tm.Type("/usa")
	waitText("1 of 8 sites")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) // accept the filter
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter}) // use
	waitText("using site 3 us")
	waitFile(envPath, "SITE_ID=3\n", true)
	if b, _ := os.ReadFile(envPath); string(b) != "# local settings\nDEBUG=1\nSITE_ID=3\n" {
		t.Errorf("env file:\n%s", b)
	}
	if !contains(eng.Calls(), "use 3") {
		t.Errorf("engine not told: %v", eng.Calls())
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc}) // clear the filter; us stays selected

	// Hosts entries on and off.
	tm.Type("h")
	waitFile(hs.path, "127.0.0.1 example.us", true)
	waitText("hosts entries added for us")
	tm.Type("h")
	waitFile(hs.path, "example.us", false)
	waitText("hosts entries removed for us")

	// Start the process: starting, then running, with its output.
	tm.Type("s")
	waitText("◐ starting")
	waitText("● running")
	waitText("Starting development server at http://127.0.0.1:")

	// A request shows in the Requests tab.
	eng.request("us", "GET", "/hello/world", 200)
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyTab})
	waitText("/hello/world")

	// q asks because a process runs; y quits.
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	tm.Send(tea.KeyMsg{Type: tea.KeyShiftTab})
	tm.Type("q")
	waitText("1 process is running. Quit and stop them? (y/n)")
	tm.Type("y")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	fm := tm.FinalModel(t).(*Model)
	if fm.forcedID != 3 {
		t.Errorf("final forced %d", fm.forcedID)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestFlowSudo checks that a hosts change without permission hands the
// terminal to the root command (here a stand-in that writes the file the
// way `sudo siteplex hosts apply` would) and comes back to a refreshed UI.
func TestFlowSudo(t *testing.T) {
	dir := t.TempDir()
	eng := newFakeEngine(demoSites())
	hs := tempHosts(dir)
	hs.denied = true
	marker := filepath.Join(dir, "ran")
	hs.command = []string{"sh", "-c", "touch " + marker + " && printf '# siteplex begin demo\\n127.0.0.1 example.de\\n# siteplex end demo\\n' >> " + hs.path}
	m := New(Options{Engine: eng, Hosts: hs, Renderer: asciiRenderer(), NoTick: true})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("example.jp")) },
		teatest.WithDuration(10*time.Second))
	tm.Type("h")
	// The command ran, and back in the UI the hosts state was read
	// again: de shows ✓.
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		return bytes.Contains(b, []byte("done: sh -c")) && bytes.Contains(b, []byte("✓"))
	}, teatest.WithDuration(10*time.Second))
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the root command did not run: %v", err)
	}
	tm.Type("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	if got := tm.FinalModel(t).(*Model).hosts[1]; got != HostsAll {
		t.Errorf("hosts state after the root command: %v", got)
	}
}
