package devproxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/internal/testenv"
)

// The tests in this file run the whole engine with --preload over the
// Django fixture with 8 sites (testdata/django, /usr/bin/python3): every
// site's process forked from one warm parent (docs/preload.md).

// preloadConfig is the engine configuration of `serve --preload` over the
// project in root.
func preloadConfig(t testing.TB, root string, watch bool) Config {
	t.Helper()
	p, load := fixtureLoader(t, root)
	return Config{Config: supervisor.Config{Project: p, Command: supervisor.RunserverCommand(testenv.Python), Watch: watch, Preload: true}, LoadSites: load}
}

// preloadEngine runs the engine with preload over a fresh copy of the
// 8-site fixture (or over root).
func preloadEngine(t *testing.T, root string, watch bool) (*Engine, string, string) {
	t.Helper()
	if root == "" {
		root = testenv.DjangoFixtureSites(t, "django", 8)
	}
	e, addr := startRealEngine(t, preloadConfig(t, root, watch))
	if n := len(e.Sites()); n != 8 {
		t.Fatalf("%d sites, want 8", n)
	}
	return e, addr, root
}

// apiFullStatus reads GET /api/status whole.
func apiFullStatus(t testing.TB, addr string) Status {
	t.Helper()
	resp, b := pxGet(t, addr, "siteplex.localhost", "/api/status", nil)
	var st Status
	if resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("/api/status: %d %s", resp.StatusCode, b)
	}
	return st
}

func TestEnginePreloadEveryHostReachesItsSiteID(t *testing.T) {
	e, addr, _ := preloadEngine(t, "", false)
	for _, s := range e.Sites() {
		hosts := append([]string{s.Domain, s.LocalDomain, "static." + s.LocalDomain}, s.Aliases...)
		for _, h := range hosts {
			if w := testenv.GetWhoami(t, addr, h); w.SiteID != s.ID || w.Host != h {
				t.Errorf("Host %s reached SITE_ID %d (Host %q), want %d", h, w.SiteID, w.Host, s.ID)
			}
		}
	}
	st := apiFullStatus(t, addr)
	if st.Preload == nil || !st.Preload.On || st.Preload.ParentPID == 0 || st.Preload.Reason != "" {
		t.Fatalf("/api/status preload: %+v, want on with a parent", st.Preload)
	}
	for _, s := range st.Sites {
		if s.State != Running || !s.Preloaded || proc.Parent(s.PID) != st.Preload.ParentPID {
			t.Errorf("%s: %+v, want running, preloaded, a child of %d", s.Slug, s, st.Preload.ParentPID)
		}
	}
	var raw map[string]any
	_, b := pxGet(t, addr, "siteplex.localhost", "/api/status", nil)
	_ = json.Unmarshal(b, &raw)
	if pre, _ := raw["preload"].(map[string]any); pre["on"] != true || pre["parent_pid"] == nil {
		t.Errorf(`/api/status "preload": %v`, raw["preload"])
	}
}

// A code change under a request loop over all 8 sites: no request fails,
// every site ends up served by a new process forked from a new warm
// parent, and the old parent and children are gone.
func TestEnginePreloadReloadUnderLoadDropsNoRequest(t *testing.T) {
	e, addr, root := preloadEngine(t, "", true)
	list := e.Sites()
	old := map[int]bool{}
	for _, s := range list {
		old[testenv.GetWhoami(t, addr, s.Domain).PID] = true
	}
	oldParent := apiFullStatus(t, addr).Preload.ParentPID
	var (
		mu      sync.Mutex
		newPIDs = map[string]int{}
	)
	loop := newWhoLoop(addr)
	stop := untilStopped(8, func(i int) {
		s := list[i%len(list)]
		w, ok := loop.get(s.Domain, s.ID)
		if ok && !old[w.PID] {
			mu.Lock()
			newPIDs[s.Slug] = w.PID
			mu.Unlock()
		}
	})
	time.Sleep(300 * time.Millisecond)
	now := time.Now()
	if err := os.Chtimes(filepath.Join(root, "fixtureproj", "views.py"), now, now); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(newPIDs)
		mu.Unlock()
		if n == len(list) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	stop()
	loop.check(t, "the reload")
	st := apiFullStatus(t, addr)
	if st.Preload.ParentPID == 0 || st.Preload.ParentPID == oldParent {
		t.Errorf("warm parent after the reload: %d (before %d), want a new one", st.Preload.ParentPID, oldParent)
	}
	for _, s := range st.Sites {
		if old[s.PID] || !s.Preloaded || s.State != Running || proc.Parent(s.PID) != st.Preload.ParentPID {
			t.Errorf("%s after the reload: %+v, want a new process forked from %d", s.Slug, s, st.Preload.ParentPID)
		}
		if newPIDs[s.Slug] == 0 {
			t.Errorf("%s: no request reached a new process", s.Slug)
		}
	}
	gone := []int{oldParent}
	for pid := range old {
		gone = append(gone, pid)
	}
	if left := testenv.WaitGone(gone, 10*time.Second, proc.Alive); len(left) > 0 {
		t.Errorf("the old parent and children %v: %v still run 10 s after the reload", gone, left)
	}
}

// Settings that raise at import: requests get the 502 page with the
// traceback (backoff after three deaths); fixing the file recovers, with
// the processes forked again.
func TestEnginePreloadBrokenSettingsShowTheTraceback(t *testing.T) {
	root := testenv.DjangoFixtureSites(t, "django", 8)
	settings := filepath.Join(root, "fixtureproj", "settings.py")
	good, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(settings, append(slices.Clone(good), "\nraise RuntimeError('siteplex test: settings are broken')\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	e, addr, _ := preloadEngine(t, root, true)
	host := e.Sites()[1].Domain
	var resp *http.Response
	var body []byte
	for range 4 {
		resp, body = pxGet(t, addr, host, "/whoami/", nil)
	}
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), "Traceback (most recent call last)") ||
		!strings.Contains(string(body), "RuntimeError: siteplex test: settings are broken") {
		t.Errorf("broken settings: %d %.2000s", resp.StatusCode, body)
	}
	st := apiFullStatus(t, addr)
	if st.Preload == nil || !strings.Contains(st.Preload.Reason, "failed to import: RuntimeError: siteplex test: settings are broken") {
		t.Errorf("/api/status preload: %+v", st.Preload)
	}
	if err := os.WriteFile(settings, good, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, body = pxGet(t, addr, host, "/whoami/", nil)
		if resp.StatusCode == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("after the fix: %d %.500s", resp.StatusCode, body)
	}
	st = apiFullStatus(t, addr)
	if st.Preload.Reason != "" || st.Preload.ParentPID == 0 {
		t.Errorf("after the fix, /api/status preload: %+v", st.Preload)
	}
	for _, s := range st.Sites {
		if s.Domain == host && !s.Preloaded {
			t.Errorf("%s after the fix: %+v, want preloaded", s.Slug, s)
		}
	}
}

// A settings module that starts a thread at import: every site starts the
// plain way, and /api/status says why.
func TestEnginePreloadThreadAtImportShownInStatus(t *testing.T) {
	root := testenv.DjangoFixtureSites(t, "django", 8)
	testenv.AppendFile(t, root, "fixtureproj/settings.py",
		"\nimport threading, time\nthreading.Thread(target=time.sleep, args=(3600,), name='sentry-worker', daemon=True).start()\n")
	e, addr, _ := preloadEngine(t, root, false)
	s := e.Sites()[0]
	if w := testenv.GetWhoami(t, addr, s.Domain); w.SiteID != s.ID || proc.Parent(w.PID) != os.Getpid() {
		t.Errorf("whoami %+v (parent %d), want site %d started by siteplex itself", w, proc.Parent(w.PID), s.ID)
	}
	const want = "threads running after the project loaded: 'sentry-worker'; a fork keeps only the forking thread"
	st := apiFullStatus(t, addr)
	if st.Preload == nil || !st.Preload.On || st.Preload.Reason != want {
		t.Errorf("/api/status preload: %+v, want reason %q", st.Preload, want)
	}
	for _, ss := range st.Sites {
		if ss.Slug == s.Slug && (ss.Preloaded || ss.PreloadReason != want) {
			t.Errorf("%s: %+v, want started plain with the reason", ss.Slug, ss)
		}
	}
}

// A forked child's output reaches the Logs API and .siteplex/logs/<slug>.log.
func TestEnginePreloadLogsOfAForkedChild(t *testing.T) {
	e, addr, root := preloadEngine(t, "", false)
	s := e.Sites()[2]
	testenv.GetWhoami(t, addr, s.Domain)
	want := `"GET /whoami/ HTTP/1.1" 200`
	auth := map[string]string{"Authorization": "Bearer " + e.Token()}
	var texts []string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, b := pxGet(t, addr, "siteplex.localhost", "/api/sites/"+s.Slug+"/logs", auth)
		var lines []LogLine
		_ = json.Unmarshal(b, &lines)
		texts = texts[:0]
		for _, l := range lines {
			texts = append(texts, l.Text)
		}
		if slices.ContainsFunc(texts, func(l string) bool { return strings.Contains(l, want) }) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, w := range []string{want, "Starting development server at http://127.0.0.1:", "forked from the warm parent (pid "} {
		if !slices.ContainsFunc(texts, func(l string) bool { return strings.Contains(l, w) }) {
			t.Errorf("Logs API for %s lacks %q: %q", s.Slug, w, texts)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, ".siteplex", "logs", s.Slug+".log"))
	if err != nil || !strings.Contains(string(b), want) {
		t.Errorf(".siteplex/logs/%s.log (%v) lacks %q:\n%s", s.Slug, err, want, b)
	}
	_, b = pxGet(t, addr, "siteplex.localhost", "/api/sites/"+PreloadLog+"/logs", auth)
	if !strings.Contains(string(b), "warm parent ready: pid ") {
		t.Errorf("the preload log: %s", b)
	}
}

const preloadHostMarker = "engine-preload-host"

// TestEnginePreloadHost is not a test: it is the siteplex that
// TestEnginePreloadSIGKILLLeavesNothing kills, and returns at once in a
// normal run. It runs the engine with preload over the project in its
// argument, starts every site, has one start a grandchild that ignores
// SIGTERM, prints "READY <pid>…" (parent, children, grandchild) and
// waits.
func TestEnginePreloadHost(t *testing.T) {
	root := childArg(preloadHostMarker)
	if root == "" {
		return
	}
	cfg := preloadConfig(t, root, false)
	cfg.Listen = []string{"127.0.0.1:0"}
	cfg.StartAll = true
	e, err := New(cfg)
	if err != nil {
		fmt.Println("host:", err)
		os.Exit(1)
	}
	if err := e.Start(context.Background()); err != nil {
		fmt.Println("host:", err)
		os.Exit(1)
	}
	addr := e.Addrs()[0]
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := e.Status()
		n := 0
		for _, s := range st.Sites {
			if s.State == Running && s.Preloaded {
				n++
			}
		}
		if n == len(st.Sites) && n > 0 {
			break
		}
		if time.Now().After(deadline) {
			fmt.Printf("host: not every site runs preloaded: %+v\n", st)
			os.Exit(1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := e.Status()
	pids := []string{strconv.Itoa(st.Preload.ParentPID)}
	for _, s := range st.Sites {
		pids = append(pids, strconv.Itoa(s.PID))
	}
	_, b := pxGet(t, addr, st.Sites[0].Domain, "/spawn/", nil)
	fmt.Println("READY " + strings.Join(pids, " ") + " " + strings.TrimSpace(string(b)))
	time.Sleep(time.Hour)
	os.Exit(0)
}

// SIGKILL of siteplex running with --preload leaves no process alive after
// 5 s: the warm parent, its 8 children and a grandchild that ignores
// SIGTERM.
func TestEnginePreloadSIGKILLLeavesNothing(t *testing.T) {
	root := testenv.DjangoFixtureSites(t, "django", 8)
	testenv.AppendFile(t, root, "fixtureproj/urls.py", `
import subprocess
from django.http import HttpResponse

def spawn(request):
    p = subprocess.Popen(["/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done"])
    return HttpResponse(str(p.pid))

urlpatterns.append(path("spawn/", spawn))
`)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestEnginePreloadHost$", "--", preloadHostMarker, root)
	cmd.Stderr = os.Stderr
	pids := testenv.StartHost(t, cmd, 10, 3*time.Minute) // the parent, 8 children, a grandchild
	for _, pid := range pids {
		if !proc.Alive(pid) {
			t.Fatalf("the engine reported pid %d, which does not run", pid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if left := testenv.WaitGone(pids, 5*time.Second, proc.Alive); len(left) > 0 {
		t.Fatalf("alive 5 s after SIGKILL of siteplex: %v (parent, children, grandchild: %v)", left, pids)
	}
	t.Logf("warm parent, 8 children and a grandchild gone %s after SIGKILL of siteplex", time.Since(start).Round(time.Millisecond))
}
