package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/muesli/termenv"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/sites"
)

// asciiRenderer renders without colour, like NO_COLOR.
func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(os.Stdout)
	r.SetColorProfile(termenv.Ascii)
	return r
}

type harness struct {
	t      *testing.T
	events <-chan devproxy.Event
	m      *Model
	eng    *fakeEngine
	hosts  *fakeHosts
	used   []int64
}

// newHarness builds a model over a fake engine and a temp hosts file and
// feeds it the engine's snapshot, as Init would.
func newHarness(t *testing.T, w, h int) *harness {
	t.Helper()
	eng := newFakeEngine(demoSites())
	hs := tempHosts(t.TempDir())
	hn := &harness{t: t, eng: eng, hosts: hs}
	hn.m = New(Options{
		Engine: eng, Hosts: hs, Project: "demo", Database: "sqlite db.sqlite3",
		Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, NoTick: true,
		WriteForced: func(ctx context.Context, id int64) error { hn.used = append(hn.used, id); return nil },
	})
	hn.events, _ = eng.Subscribe()
	hn.send(tea.WindowSizeMsg{Width: w, Height: h})
	hn.send(startedMsg{})
	return hn
}

// send delivers msg and runs the returned commands synchronously (those
// that answer within a short time; waits and ticks are dropped).
func (h *harness) send(msg tea.Msg) {
	h.t.Helper()
	_, cmd := h.m.Update(msg)
	h.run(cmd, 0)
	h.drain()
}

// drain delivers the engine events queued so far, as one batch.
func (h *harness) drain() {
	if h.events == nil {
		return
	}
	var evs []devproxy.Event
	for {
		select {
		case ev := <-h.events:
			evs = append(evs, ev)
			continue
		default:
		}
		break
	}
	if len(evs) > 0 {
		_, cmd := h.m.Update(eventsMsg{events: evs})
		h.run(cmd, 0)
	}
}

// runQuick runs cmd and returns its message, or ok=false when it waits
// longer than 20 ms (a tick, an engine event: not for these tests).
func runQuick(cmd tea.Cmd) (msg tea.Msg, ok bool) {
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg = <-done:
		return msg, true
	case <-time.After(20 * time.Millisecond):
		return nil, false
	}
}

func (h *harness) run(cmd tea.Cmd, depth int) {
	if cmd == nil || depth > 8 {
		return
	}
	msg, ok := runQuick(cmd)
	if !ok {
		return
	}
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			h.run(c, depth+1)
		}
	case tea.QuitMsg, clearStatusMsg, retryStartMsg, retryReloadMsg:
		// not delivered: quitting and timers are asserted separately
	default:
		_, next := h.m.Update(msg)
		h.run(next, depth+1)
	}
}

func (h *harness) key(keys ...string) {
	h.t.Helper()
	for _, k := range keys {
		h.send(keyMsg(k))
	}
}

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "ctrl+d":
		return tea.KeyMsg{Type: tea.KeyCtrlD}
	case "ctrl+u":
		return tea.KeyMsg{Type: tea.KeyCtrlU}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "pgup":
		return tea.KeyMsg{Type: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyMsg{Type: tea.KeyPgDown}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

func (h *harness) selectedSlug() string {
	if s := h.m.selected(); s != nil {
		return s.Slug
	}
	return ""
}

func TestMovementKeys(t *testing.T) {
	tests := []struct {
		keys []string
		want string
	}{
		{nil, "de"},
		{[]string{"j"}, "gh"},
		{[]string{"down", "down"}, "us"},
		{[]string{"j", "k"}, "de"},
		{[]string{"j", "up"}, "de"},
		{[]string{"k"}, "de"},
		{[]string{"G"}, "jp"},
		{[]string{"G", "g"}, "de"},
		{[]string{"ctrl+d"}, "evil"},
		{[]string{"G", "ctrl+u"}, "example-org"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.keys, ","), func(t *testing.T) {
			h := newHarness(t, 80, 24)
			h.key(tt.keys...)
			if got := h.selectedSlug(); got != tt.want {
				t.Errorf("after %v selected %q, want %q", tt.keys, got, tt.want)
			}
		})
	}
}

func TestFilterKeys(t *testing.T) {
	tests := []struct {
		name     string
		keys     []string
		wantRows int
		wantSel  string
		wantMode mode
		wantText string
	}{
		{"typing narrows", []string{"/", "g", "h", "a"}, 1, "gh", modeFilter, "gha"},
		{"fuzzy subsequence", []string{"/", "e", "x", "j", "p"}, 1, "jp", modeFilter, "exjp"},
		{"by id", []string{"/", "7"}, 2, "fr", modeFilter, "7"},
		{"enter accepts", []string{"/", "u", "s", "a", "enter"}, 1, "us", modeNormal, "usa"},
		{"esc clears", []string{"/", "g", "h", "esc"}, 8, "gh", modeNormal, ""},
		{"esc after accept clears", []string{"/", "j", "p", "enter", "esc"}, 8, "jp", modeNormal, ""},
		{"backspace", []string{"/", "g", "x", "backspace"}, 0, "", modeFilter, "g"},
		{"no match", []string{"/", "z", "z", "z"}, 0, "", modeFilter, "zzz"},
		{"j types in filter", []string{"/", "j"}, 2, "jp", modeFilter, "j"},
		{"down moves in filter", []string{"/", "e", "x", "down"}, 7, "", modeFilter, "ex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 80, 24)
			h.key(tt.keys...)
			if tt.name == "backspace" {
				tt.wantRows = len(h.m.rows) // "g" matches many; just check the text
				tt.wantSel = h.selectedSlug()
			}
			if tt.name == "down moves in filter" {
				tt.wantRows = len(h.m.rows)
				if h.m.cursor != 1 {
					t.Errorf("cursor %d, want 1", h.m.cursor)
				}
				tt.wantSel = h.selectedSlug()
			}
			if len(h.m.rows) != tt.wantRows {
				t.Errorf("rows %d, want %d", len(h.m.rows), tt.wantRows)
			}
			if got := h.selectedSlug(); got != tt.wantSel {
				t.Errorf("selected %q, want %q", got, tt.wantSel)
			}
			if h.m.kmode != tt.wantMode {
				t.Errorf("mode %v, want %v", h.m.kmode, tt.wantMode)
			}
			if h.m.filter != tt.wantText {
				t.Errorf("filter %q, want %q", h.m.filter, tt.wantText)
			}
		})
	}
}

func TestActionKeys(t *testing.T) {
	tests := []struct {
		name      string
		keys      []string
		wantCalls []string
		check     func(t *testing.T, h *harness)
	}{
		{"enter uses the site", []string{"j", "j", "enter"}, []string{"use 3"}, func(t *testing.T, h *harness) {
			if fmt.Sprint(h.used) != "[3]" {
				t.Errorf("env file writes %v, want [3]", h.used)
			}
			if h.m.forcedID != 3 {
				t.Errorf("forced %d, want 3", h.m.forcedID)
			}
		}},
		{"enter on a problem site refuses", []string{"j", "j", "j", "j", "enter"}, nil, func(t *testing.T, h *harness) {
			if !h.m.statusErr || !strings.Contains(h.m.statusText, "cannot be used") {
				t.Errorf("status %q", h.m.statusText)
			}
		}},
		{"s starts", []string{"s"}, []string{"start de"}, nil},
		{"s s stops", []string{"s", "s"}, []string{"start de", "stop de"}, nil},
		{"r restarts", []string{"r"}, []string{"restart de"}, nil},
		{"R reloads", []string{"R"}, []string{"reload"}, nil},
		{"s on a problem site refuses", []string{"G", "k", "k", "k", "s"}, nil, func(t *testing.T, h *harness) {
			if h.selectedSlug() != "" && !strings.Contains(h.m.statusText, "not routed") {
				t.Errorf("selected %s status %q", h.selectedSlug(), h.m.statusText)
			}
		}},
		{"h applies then removes", []string{"h"}, nil, func(t *testing.T, h *harness) {
			b, _ := os.ReadFile(h.hosts.path)
			if !strings.Contains(string(b), "127.0.0.1 example.de") {
				t.Fatalf("hosts file:\n%s", b)
			}
			if h.m.hosts[1] != HostsAll {
				t.Errorf("hosts state %v", h.m.hosts[1])
			}
			h.key("h")
			b, _ = os.ReadFile(h.hosts.path)
			if strings.Contains(string(b), "example.de") {
				t.Fatalf("hosts file after second h:\n%s", b)
			}
			if !strings.HasPrefix(string(b), "127.0.0.1 localhost\n::1 localhost\n") {
				t.Errorf("lines outside the block changed:\n%s", b)
			}
		}},
		{"H applies all then removes all", []string{"H"}, nil, func(t *testing.T, h *harness) {
			b, _ := os.ReadFile(h.hosts.path)
			for _, n := range []string{"example.de", "example.gh", "example.jp", "example.org"} {
				if !strings.Contains(string(b), "127.0.0.1 "+n+"\n") {
					t.Errorf("%s missing:\n%s", n, b)
				}
			}
			if strings.Contains(string(b), "bank.com") {
				t.Errorf("a problem site was written:\n%s", b)
			}
			h.key("H")
			b, _ = os.ReadFile(h.hosts.path)
			if strings.Contains(string(b), "siteplex") {
				t.Errorf("block not removed:\n%s", b)
			}
		}},
		{"tab cycles the pane", []string{"tab"}, nil, func(t *testing.T, h *harness) {
			if h.m.focus() != focusLogs {
				t.Fatalf("focus %v", h.m.focus())
			}
			h.key("tab")
			if h.m.focus() != focusRequests {
				t.Fatalf("focus %v", h.m.focus())
			}
			h.key("tab", "tab")
			if h.m.focus() != focusTable || h.m.tab != tabInfo {
				t.Fatalf("focus %v tab %v", h.m.focus(), h.m.tab)
			}
			h.key("shift+tab")
			if h.m.focus() != focusInfo {
				t.Fatalf("focus %v", h.m.focus())
			}
			h.key("esc")
			if h.m.focus() != focusTable {
				t.Fatalf("esc: focus %v", h.m.focus())
			}
		}},
		{"? toggles the full help", []string{"?"}, nil, func(t *testing.T, h *harness) {
			if !h.m.showHelp || !strings.Contains(h.m.View(), "½ page down") {
				t.Error("full help not shown")
			}
			h.key("?")
			if h.m.showHelp {
				t.Error("still shown")
			}
		}},
		{"f toggles follow", []string{"f"}, nil, func(t *testing.T, h *harness) {
			if h.m.follow {
				t.Error("still following")
			}
			h.key("f")
			if !h.m.follow {
				t.Error("not following")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 80, 24)
			h.key(tt.keys...)
			var calls []string
			for _, c := range h.eng.Calls() {
				if c != "start" {
					calls = append(calls, c)
				}
			}
			if fmt.Sprint(calls) != fmt.Sprint(tt.wantCalls) {
				t.Errorf("engine calls %v, want %v", calls, tt.wantCalls)
			}
			if tt.check != nil {
				tt.check(t, h)
			}
		})
	}
}

func TestOpenKey(t *testing.T) {
	h := newHarness(t, 80, 24)
	var opened []string
	h.m.opt.OpenURL = func(ctx context.Context, u string) error { opened = append(opened, u); return nil }
	h.key("o")
	if fmt.Sprint(opened) != "[http://de.localhost:8080/]" {
		t.Errorf("opened %v", opened)
	}
	h.key("h", "o")
	if len(opened) != 2 || opened[1] != "http://example.de:8080/" {
		t.Errorf("with hosts entries opened %v", opened)
	}
}

// TestOpenKeyHTTPS: once the engine serves HTTPS, o opens the https URL
// on its HTTPS port, for names the CA may sign; the header and the Info
// pane show it too.
func TestOpenKeyHTTPS(t *testing.T) {
	h := newHarness(t, 120, 30)
	h.eng.mu.Lock()
	h.eng.https = []string{"127.0.0.1:8443", "[::1]:8443"}
	h.eng.mu.Unlock()
	h.m.opt.HTTPSPermits = func(n string) bool { return strings.HasSuffix(n, ".localhost") }
	h.send(statusMsg{status: h.eng.Status()})
	var opened []string
	h.m.opt.OpenURL = func(ctx context.Context, u string) error { opened = append(opened, u); return nil }
	h.key("o")
	if fmt.Sprint(opened) != "[https://de.localhost:8443/]" {
		t.Errorf("opened %v", opened)
	}
	view := h.m.View()
	if !strings.Contains(view, "https :8443 (127.0.0.1, ::1)") {
		t.Errorf("the header does not show the HTTPS port:\n%s", view)
	}
	// With hosts entries the real domain is opened: the CA may not sign
	// it, so over plain HTTP.
	h.key("h", "o")
	if len(opened) != 2 || opened[1] != "http://example.de:8080/" {
		t.Errorf("with hosts entries opened %v", opened)
	}
}

func TestQuitKeys(t *testing.T) {
	tests := []struct {
		name     string
		running  bool
		keys     []string
		wantQuit bool
		wantMode mode
	}{
		{"q quits when nothing runs", false, []string{"q"}, true, modeNormal},
		{"q asks when processes run", true, []string{"q"}, false, modeConfirm},
		{"y confirms", true, []string{"q", "y"}, true, modeConfirm},
		{"n cancels", true, []string{"q", "n"}, false, modeNormal},
		{"esc cancels", true, []string{"q", "esc"}, false, modeNormal},
		{"ctrl+c quits at once", true, []string{"ctrl+c"}, true, modeNormal},
		{"ctrl+c quits while filtering", false, []string{"/", "ctrl+c"}, true, modeFilter},
		{"q and y typed in one read", true, []string{"qy"}, true, modeConfirm},
		{"? and q typed in one read", false, []string{"?q"}, true, modeNormal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, 80, 24)
			if tt.running {
				h.m.status["gh"] = devproxy.SiteStatus{Slug: "gh", State: devproxy.Running, PID: 1, Port: 2}
			}
			quit := false
			for _, k := range tt.keys {
				_, cmd := h.m.Update(keyMsg(k))
				if quits(cmd) {
					quit = true
				}
			}
			if quit != tt.wantQuit {
				t.Errorf("quit %v, want %v", quit, tt.wantQuit)
			}
			if h.m.kmode != tt.wantMode {
				t.Errorf("mode %v, want %v", h.m.kmode, tt.wantMode)
			}
			if tt.wantMode == modeConfirm && !strings.Contains(h.m.View(), "1 process is running. Quit and stop them? (y/n)") {
				t.Errorf("no question in view:\n%s", h.m.View())
			}
		})
	}
}

func TestAttachedQuitsWithoutAsking(t *testing.T) {
	h := newHarness(t, 120, 24)
	h.m.opt.Attached = "serve pid 4242"
	h.m.status["gh"] = devproxy.SiteStatus{Slug: "gh", State: devproxy.Running, PID: 1, Port: 2}
	if v := h.m.View(); !strings.Contains(v, "serve pid 4242") {
		t.Errorf("the header does not say which engine the UI is attached to:\n%s", v)
	}
	_, cmd := h.m.Update(keyMsg("q"))
	if !quits(cmd) || h.m.kmode != modeNormal {
		t.Errorf("q with processes of another engine running: quit %v, mode %v; want quit at once", quits(cmd), h.m.kmode)
	}
}

func TestLogsFollowPauseAndSearch(t *testing.T) {
	h := newHarness(t, 80, 24)
	for i := 0; i < 50; i++ {
		h.eng.mu.Lock()
		h.eng.log("de", fmt.Sprintf("line %02d", i), false)
		h.eng.mu.Unlock()
	}
	h.send(logsMsg{slug: "de", lines: h.eng.Logs("de", 100)})
	v := h.m.View()
	if !strings.Contains(v, "line 49") || strings.Contains(v, "line 10") {
		t.Fatalf("not following the end:\n%s", v)
	}
	h.key("tab", "k") // focus the logs, scroll up
	if h.m.follow {
		t.Fatal("scrolling up did not pause following")
	}
	if !strings.Contains(h.m.View(), "paused") {
		t.Error("pause not shown")
	}
	h.key("G")
	if !h.m.follow {
		t.Fatal("reaching the bottom did not resume following")
	}
	h.key("/", "l", "i", "n", "e", " ", "0", "7", "enter")
	v = h.m.View()
	if h.m.searchHit != 7 || !strings.Contains(v, "▶") || !strings.Contains(v, "line 07") {
		t.Fatalf("search hit %d:\n%s", h.m.searchHit, v)
	}
	h.key("esc")
	if h.m.search != "" || h.m.focus() != focusLogs {
		t.Errorf("first esc: search %q, focus %v; want the search cleared", h.m.search, h.m.focus())
	}
	h.key("esc")
	if h.m.focus() != focusTable {
		t.Error("second esc did not return to the table")
	}
	// New lines arrive as events while paused: the view stays put.
	h.key("tab", "/", "n", "o", "p", "e", "enter")
	if !strings.Contains(h.m.statusText, "no match") {
		t.Errorf("status %q", h.m.statusText)
	}
}

func TestErrorsAreShownAndRetried(t *testing.T) {
	t.Run("port refused", func(t *testing.T) {
		h := newHarness(t, 100, 30)
		err := &devproxy.ListenError{Addr: "127.0.0.1:80", Err: syscall.EACCES}
		_, cmd := h.m.Update(startedMsg{err: err})
		if cmd == nil {
			t.Fatal("no retry scheduled")
		}
		v := h.m.View()
		for _, want := range []string{"proxy not running", "cannot listen on 127.0.0.1:80: permission denied", "setcap cap_net_bind_service=+ep", "net.ipv4.ip_unprivileged_port_start", "--listen 127.0.0.1:8080"} {
			if !strings.Contains(v, want) {
				t.Errorf("view lacks %q:\n%s", want, v)
			}
		}
		// The UI keeps working.
		h.key("j")
		if h.selectedSlug() != "gh" {
			t.Error("keys stopped working")
		}
		h.send(retryStartMsg{})
		if strings.Contains(h.m.View(), "proxy not running") {
			t.Errorf("retry did not clear the error:\n%s", h.m.View())
		}
	})
	t.Run("database down at start fills in", func(t *testing.T) {
		eng := newFakeEngine(demoSites())
		eng.loadErr = errors.New("postgres 127.0.0.1:5432/app: connection refused")
		m := New(Options{Engine: eng, Renderer: asciiRenderer(), NoTick: true, Now: func() time.Time { return fixedNow }})
		h := &harness{t: t, m: m, eng: eng}
		h.send(tea.WindowSizeMsg{Width: 80, Height: 24})
		h.send(startedMsg{})
		if !strings.Contains(h.m.View(), "connection refused") || !h.m.reloadWait {
			t.Fatalf("error not shown or no retry:\n%s", h.m.View())
		}
		eng.mu.Lock()
		eng.loadErr = nil
		eng.mu.Unlock()
		h.send(retryReloadMsg{})
		if len(h.m.sites) != 8 || !strings.Contains(h.m.View(), "example.jp") {
			t.Fatalf("sites did not fill in:\n%s", h.m.View())
		}
	})
	t.Run("a project without sites is asked once", func(t *testing.T) {
		eng := newFakeEngine(nil)
		m := New(Options{Engine: eng, Renderer: asciiRenderer(), NoTick: true, Now: func() time.Time { return fixedNow }})
		h := &harness{t: t, m: m, eng: eng}
		h.send(tea.WindowSizeMsg{Width: 80, Height: 24})
		h.send(startedMsg{})
		h.send(snapshotMsg{})
		n := 0
		for _, c := range eng.Calls() {
			if c == "reload" {
				n++
			}
		}
		if n != 1 || !strings.Contains(h.m.View(), "no sites") {
			t.Errorf("%d reloads; view:\n%s", n, h.m.View())
		}
	})
	t.Run("hosts permission suspends for sudo", func(t *testing.T) {
		h := newHarness(t, 80, 24)
		h.hosts.denied = true
		_, cmd := h.m.Update(keyMsg("h"))
		msg := cmd()
		_, next := h.m.Update(msg)
		if next == nil || !strings.Contains(h.m.statusText, "true siteplex hosts apply de") {
			t.Fatalf("no exec for sudo: status %q", h.m.statusText)
		}
		// What tea.ExecProcess delivers when the command ends:
		h.send(sudoDoneMsg{command: "sudo siteplex hosts apply de"})
		if !strings.Contains(h.m.statusText, "done") {
			t.Errorf("status %q", h.m.statusText)
		}
	})
	t.Run("engine error event", func(t *testing.T) {
		h := newHarness(t, 80, 24)
		h.send(eventsMsg{events: []devproxy.Event{{Kind: devproxy.EventError, Err: errors.New("watch: too many files")}}})
		if !strings.Contains(h.m.View(), "✖ watch: too many files") {
			t.Errorf("error not shown:\n%s", h.m.View())
		}
	})
}

func TestEventsAreCoalesced(t *testing.T) {
	ch := make(chan devproxy.Event, 10)
	for i := 0; i < 5; i++ {
		ch <- devproxy.Event{Kind: devproxy.EventLog, Log: devproxy.LogLine{Site: "de", Text: fmt.Sprint(i)}}
	}
	msg := waitEvents(ch)().(eventsMsg)
	if len(msg.events) != 5 || msg.closed {
		t.Fatalf("got %d events, closed %v", len(msg.events), msg.closed)
	}
	close(ch)
	if msg := waitEvents(ch)().(eventsMsg); !msg.closed {
		t.Error("closed channel not reported")
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                    "plain",
		"\x1b[31mred\x1b[0m":       "red",
		"a\tb":                     "a    b",
		"bell\a and \x1b]0;t\a ok": "bell and  ok",
	} {
		if got := sanitize(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

// goldenView renders the model with a few states set, for the golden
// files at the sizes docs/tui.md names.
func TestViewGolden(t *testing.T) {
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}, {100, 30}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			h := newHarness(t, size.w, size.h)
			h.send(hostsStateFixture(h))
			h.eng.mu.Lock()
			st := h.eng.status
			exit1 := 1
			st["gh"] = devproxy.SiteStatus{ID: 2, Slug: "gh", State: devproxy.Running, PID: 4242, Port: 41234, Requests: 128, StartedAt: fixedNow.Add(-192 * time.Second),
				Identity: &devproxy.Identity{Checked: true, OK: true, Detail: "✓ site 2 on gh.localhost, example.gh", PID: 4242}}
			st["us"] = devproxy.SiteStatus{ID: 3, Slug: "us", State: devproxy.Starting, PID: 4243, Port: 41301, Requests: 2}
			st["example-org"] = devproxy.SiteStatus{ID: 4, Slug: "example-org", State: devproxy.Crashed, LastExit: &exit1, Requests: 5}
			h.eng.log("gh", "starting: siteplex demo-site --port 41234", true)
			h.eng.log("gh", "Starting development server at http://127.0.0.1:41234/", false)
			h.eng.log("gh", "[25/Nov/2026 19:02:12] \"GET / HTTP/1.1\" 200 4100", false)
			h.eng.mu.Unlock()
			h.send(snapshotMsg{sites: h.eng.Sites(), status: h.eng.Status(), addrs: h.eng.Addrs()})
			h.key("j") // select gh
			h.eng.request("gh", "GET", "/", 200)
			h.eng.request("gh", "GET", "/static/site.css", 200)
			h.eng.request("gh", "POST", "/admin/login/", 302)
			h.send(requestsMsg{reqs: h.eng.Requests(10)})

			var out strings.Builder
			for _, step := range []struct {
				name string
				keys []string
			}{
				{"logs", nil},
				{"requests", []string{"tab", "tab"}},
				{"info", []string{"tab"}},
				{"filter", []string{"tab", "/", "e", "x", "a"}},
				{"confirm quit", []string{"esc", "q"}},
				{"help", []string{"n", "?"}},
			} {
				h.key(step.keys...)
				fmt.Fprintf(&out, "==== %s\n%s\n", step.name, h.m.View())
			}
			for i, l := range strings.Split(out.String(), "\n") {
				if w := lipgloss.Width(l); w > size.w {
					t.Errorf("line %d is %d wide (> %d): %q", i, w, size.w, l)
				}
			}
			golden.RequireEqual(t, []byte(out.String()))
		})
	}
}

func hostsStateFixture(h *harness) hostsMsg {
	_ = h.hosts.Apply(context.Background(), h.m.sites, []string{"gh", "us"})
	st, err := h.hosts.Status(context.Background(), h.m.sites)
	return hostsMsg{states: st, err: err}
}

// TestViewFitsEverySize checks that every line fits, and the screen has
// exactly the terminal's height, from tiny to large sizes.
func TestViewFitsEverySize(t *testing.T) {
	h := newHarness(t, 80, 24)
	for _, w := range []int{20, 40, 60, 80, 100, 120, 200} {
		for _, ht := range []int{5, 10, 24, 40} {
			h.send(tea.WindowSizeMsg{Width: w, Height: ht})
			v := h.m.View()
			lines := strings.Split(v, "\n")
			if len(lines) != ht && ht >= 10 {
				t.Errorf("%dx%d: %d lines", w, ht, len(lines))
			}
			for i, l := range lines {
				if lipgloss.Width(l) > w {
					t.Errorf("%dx%d: line %d is %d wide", w, ht, i, lipgloss.Width(l))
				}
			}
		}
	}
}

var _ = sites.Site{}

// TestNoColor checks that NO_COLOR, read by the renderer, leaves no
// colour in the view, while the same terminal without it gets colours.
func TestNoColor(t *testing.T) {
	for _, tt := range []struct {
		noColor   string
		wantColor bool
	}{{"", true}, {"1", false}} {
		t.Run("NO_COLOR="+tt.noColor, func(t *testing.T) {
			t.Setenv("TERM", "xterm-256color")
			t.Setenv("COLORTERM", "truecolor")
			t.Setenv("NO_COLOR", tt.noColor)
			r := lipgloss.NewRenderer(io.Discard, termenv.WithTTY(true))
			m := New(Options{Engine: newFakeEngine(demoSites()), Renderer: r, NoTick: true, Now: func() time.Time { return fixedNow }})
			m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
			eng := m.opt.Engine
			m.Update(snapshotMsg{sites: eng.Sites(), status: eng.Status(), addrs: eng.Addrs()})
			if got := strings.Contains(m.View(), "\x1b["); got != tt.wantColor {
				t.Errorf("escape sequences in the view: %v, want %v", got, tt.wantColor)
			}
		})
	}
}

// quits reports whether cmd (or a command it batches or sequences)
// quits, without running commands that wait.
func quits(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	msg, ok := runQuick(cmd)
	if !ok {
		return false
	}
	if _, ok := msg.(tea.QuitMsg); ok {
		return true
	}
	// tea.Batch and tea.Sequence answer with a slice of commands.
	v := reflect.ValueOf(msg)
	if v.Kind() == reflect.Slice {
		for i := 0; i < v.Len(); i++ {
			if c, ok := v.Index(i).Interface().(tea.Cmd); ok && quits(c) {
				return true
			}
		}
	}
	return false
}

// TestSelectionSurvivesReload checks that a new site list (the engine
// re-read the sites, or the forced site changed) keeps the selection,
// with and without a filter.
func TestSelectionSurvivesReload(t *testing.T) {
	for _, keys := range [][]string{{"j", "j", "j"}, {"/", "e", "x", "enter", "down", "down"}} {
		h := newHarness(t, 80, 24)
		h.key(keys...)
		want := h.selectedSlug()
		h.send(snapshotMsg{sites: h.eng.Sites(), status: h.eng.Status(), addrs: h.eng.Addrs()})
		if got := h.selectedSlug(); got != want || want == "" {
			t.Errorf("after %v and a reload: selected %q, want %q", keys, got, want)
		}
	}
}

func TestFmtAddrs(t *testing.T) {
	for _, tt := range []struct {
		addrs   []string
		compact bool
		want    string
	}{
		{[]string{"127.0.0.1:8080"}, false, "127.0.0.1:8080"},
		{[]string{"127.0.0.1:8080"}, true, ":8080"},
		{[]string{"127.0.0.1:80", "[::1]:80"}, false, ":80 (127.0.0.1, ::1)"},
		{[]string{"127.0.0.1:80", "[::1]:80"}, true, ":80"},
		{[]string{"127.0.0.1:80", "127.0.0.1:8080"}, true, "127.0.0.1:80, 127.0.0.1:8080"},
	} {
		if got := fmtAddrs(tt.addrs, tt.compact); got != tt.want {
			t.Errorf("fmtAddrs(%v, %v) = %q, want %q", tt.addrs, tt.compact, got, tt.want)
		}
	}
}

// TestViewGoldenErrors pins the screens of the two start-up failures at
// 80×24: port 80 refused (the ways out, the table still working) and the
// database down (why, and that it retries).
func TestViewGoldenErrors(t *testing.T) {
	var out strings.Builder
	h := newHarness(t, 80, 24)
	h.send(startedMsg{err: &devproxy.ListenError{Addr: "127.0.0.1:80", Err: syscall.EACCES}})
	fmt.Fprintf(&out, "==== port refused\n%s\n", h.m.View())

	eng := newFakeEngine(demoSites())
	eng.loadErr = errors.New(`loading sites: postgres 127.0.0.1:5432/app: connection refused: is the database running? (docker compose up -d db)`)
	m := New(Options{Engine: eng, Project: "app", Database: "postgres 127.0.0.1:5432/app", Renderer: asciiRenderer(), NoTick: true, Now: func() time.Time { return fixedNow }})
	h2 := &harness{t: t, m: m, eng: eng}
	h2.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	h2.send(startedMsg{})
	fmt.Fprintf(&out, "==== database down\n%s\n", h2.m.View())
	golden.RequireEqual(t, []byte(out.String()))
}

func TestListenHelp(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"port 80", &devproxy.ListenError{Addr: "127.0.0.1:80", Err: syscall.EACCES}, []string{
			"sudo setcap cap_net_bind_service=+ep $(which siteplex)",
			"sudo sysctl net.ipv4.ip_unprivileged_port_start=80",
			"siteplex --listen 127.0.0.1:8080"}},
		{"port 443 by default", &devproxy.ListenError{Addr: "127.0.0.1:443", Err: syscall.EACCES, HTTPS: true, ByDefault: true}, []string{
			"sudo setcap cap_net_bind_service=+ep $(which siteplex)",
			"sudo sysctl net.ipv4.ip_unprivileged_port_start=443",
			"siteplex --https 127.0.0.1:8443",
			`siteplex --https off   (HTTPS is on because the local CA exists; in siteplex.toml: https = "off")`}},
		{"443 in use", &devproxy.ListenError{Addr: "127.0.0.1:443", Err: syscall.EADDRINUSE, HTTPS: true}, []string{
			"stop what holds the port (ss -ltnp shows it), or",
			"siteplex --https 127.0.0.1:8443"}},
		{"something else", errors.New("boom"), nil},
	}
	for _, tt := range tests {
		if got := ListenHelp(tt.err); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
