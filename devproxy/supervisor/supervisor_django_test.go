package supervisor

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// The tests in this file run the real Django fixture (testdata/django)
// under runserver, with /usr/bin/python3.

// djangoSupervisor loads the fixture project and its sites from its
// SQLite database and returns a supervisor running RunserverCommand(testenv.Python).
func svDjango(t *testing.T, cfg Config) (*Supervisor, []sites.Site) {
	t.Helper()
	root := testenv.DjangoFixture(t, "django", false)
	p, err := sites.Load(sites.Options{Project: root})
	if err != nil {
		t.Fatal(err)
	}
	list := svDBSites(t, p)
	return svStart(t, p, cfg, list), list
}

// svStart runs a supervisor for p's sites list (cfg.Command defaults to
// RunserverCommand(testenv.Python)) and closes it at cleanup.
func svStart(t *testing.T, p *sites.Project, cfg Config, list []sites.Site) *Supervisor {
	t.Helper()
	cfg.Project = p
	if cfg.Command == nil {
		cfg.Command = RunserverCommand(testenv.Python)
	}
	s := New(cfg, nil)
	s.SetSites(list, 0)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// svDBSites reads p's sites from its database (at least 3).
func svDBSites(t *testing.T, p *sites.Project) []sites.Site {
	t.Helper()
	list, _, _, err := p.ReadSites(context.Background(), nil)
	if err != nil || len(list) < 3 {
		t.Fatalf("fixture sites: %v %+v", err, list)
	}
	return list
}

func TestDjangoLazyStartAndCrashRestart(t *testing.T) {
	s, list := svDjango(t, Config{})
	ctx := context.Background()
	for _, st := range list[:2] {
		addr, release, err := s.Acquire(ctx, &st)
		if err != nil {
			t.Fatalf("%s: %v", st.Slug, err)
		}
		w := testenv.GetWhoami(t, addr, st.Domain)
		release()
		if w.SiteID != st.ID || w.SiteName != st.Name {
			t.Errorf("%s: whoami %+v, want site %d %q", st.Slug, w, st.ID, st.Name)
		}
	}
	if got := svStatus(t, s, list[2].Slug).State; got != Stopped {
		t.Errorf("%s never asked for: %s, want stopped", list[2].Slug, got)
	}

	// kill -9 → crashed, and the next request starts it again.
	first := list[0]
	addr, release, _ := s.Acquire(ctx, &first)
	before := testenv.GetWhoami(t, addr, first.Domain)
	release()
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	svWaitFor(t, 5*time.Second, "crashed", func() bool { return svStatus(t, s, first.Slug).State == Crashed })
	if st := svStatus(t, s, first.Slug); st.LastExit == nil || *st.LastExit != 137 {
		t.Errorf("status %+v, want last exit 137", st)
	}
	addr, release, err := s.Acquire(ctx, &first)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	after := testenv.GetWhoami(t, addr, first.Domain)
	if after.PID == before.PID || after.SiteID != first.ID {
		t.Errorf("after restart %+v (before %+v)", after, before)
	}
}

// svBreakSettings makes the fixture's settings raise at import and returns
// the function that restores them.
func svBreakSettings(t *testing.T, s *Supervisor) (fix func()) {
	t.Helper()
	settings := filepath.Join(s.root, "fixtureproj", "settings.py")
	good, err := os.ReadFile(settings)
	if err != nil {
		t.Fatal(err)
	}
	broken := append(append([]byte{}, good...), "\nraise RuntimeError('siteplex test: settings are broken')\n"...)
	if err := os.WriteFile(settings, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.WriteFile(settings, good, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// svWantBackoff asks for st three times, which must fail and end in
// backoff with the traceback of svBreakSettings in the 502 page's tail.
func svWantBackoff(t *testing.T, s *Supervisor, st sites.Site) *BackoffError {
	t.Helper()
	var last error
	for range 3 {
		_, _, last = s.Acquire(context.Background(), &st)
		if last == nil {
			t.Fatal("a broken project started")
		}
	}
	var bo *BackoffError
	if !errors.As(last, &bo) {
		t.Fatalf("after 3 deaths: %v, want *BackoffError", last)
	}
	tail := strings.Join(bo.Tail, "\n")
	if !strings.Contains(tail, "Traceback (most recent call last)") || !strings.Contains(tail, "RuntimeError: siteplex test: settings are broken") {
		t.Errorf("tail lacks the traceback:\n%s", tail)
	}
	if len(bo.Tail) > TailLines || bo.LastExit != 1 {
		t.Errorf("tail of %d lines, last exit %d", len(bo.Tail), bo.LastExit)
	}
	if got := svStatus(t, s, st.Slug).State; got != Backoff {
		t.Errorf("state %s, want backoff", got)
	}
	return bo
}

func TestDjangoBrokenSettingsBackoffAndRecovery(t *testing.T) {
	s, list := svDjango(t, Config{})
	fix := svBreakSettings(t, s)
	st := list[1]
	svWantBackoff(t, s, st)
	// Fix the file; the code change clears the backoff.
	fix()
	s.ReloadCode()
	addr, release, err := s.Acquire(context.Background(), &st)
	if err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	defer release()
	if w := testenv.GetWhoami(t, addr, st.Domain); w.SiteID != st.ID {
		t.Errorf("whoami %+v", w)
	}
}

func TestDjangoTouchReloadsRunningProcesses(t *testing.T) {
	s, list := svDjango(t, Config{Watch: true})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	// The first start takes long enough for the watcher to be in place.
	st := list[0]
	addr, release, err := s.Acquire(ctx, &st)
	if err != nil {
		t.Fatal(err)
	}
	before := testenv.GetWhoami(t, addr, st.Domain)
	release()

	// A .py file under __pycache__ or .git does not count.
	for _, p := range []string{".git/hooks/x.py", "fixtureproj/__pycache__/y.py", "media/z.py"} {
		full := filepath.Join(s.root, p)
		_ = os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte("#\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(defaultDebounce + 500*time.Millisecond)
	if got := svStatus(t, s, st.Slug); got.PID != before.PID {
		t.Fatalf("ignored files restarted the process: %+v", got)
	}
	now := time.Now()
	if err := os.Chtimes(filepath.Join(s.root, "fixtureproj", "views.py"), now, now); err != nil {
		t.Fatal(err)
	}
	svWaitFor(t, 15*time.Second, "a new process", func() bool {
		got := svStatus(t, s, st.Slug)
		return got.PID != before.PID && got.PID != 0
	})
	addr, release, err = s.Acquire(ctx, &st)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	after := testenv.GetWhoami(t, addr, st.Domain)
	if after.PID == before.PID {
		t.Errorf("same process after touching views.py")
	}
	if !slices.ContainsFunc(svLogTexts(s, st.Slug), func(l string) bool {
		return strings.HasPrefix(l, "code changed (fixtureproj/views.py): restarting")
	}) {
		t.Errorf("no reload line in %q", svLogTexts(s, st.Slug))
	}
}

// BenchmarkDjangoColdStart measures a first request to a stopped Django
// site: runserver boot plus the supervisor's wait for its port.
func BenchmarkDjangoColdStart(b *testing.B) {
	root := testenv.DjangoFixture(b, "django", false)
	p, err := sites.Load(sites.Options{Project: root})
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{Project: p, Command: RunserverCommand(testenv.Python)}, nil)
	defer s.Close(context.Background())
	st := sites.Site{ID: 1, Slug: "alpha", Domain: "alpha.example.com"}
	s.SetSites([]sites.Site{st}, 0)
	ctx := context.Background()
	for b.Loop() {
		addr, release, err := s.Acquire(ctx, &st)
		if err != nil {
			b.Fatal(err)
		}
		testenv.GetWhoami(b, addr, st.Domain)
		release()
		b.StopTimer()
		if err := s.Stop(ctx, "alpha"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// The fixture's views work as the proxy tests expect (directly, without
// the proxy): upload echo, streamed lines, env, and /die/ ending the
// process, which the supervisor records as a crash.
func TestDjangoFixtureViews(t *testing.T) {
	s, list := svDjango(t, Config{})
	st := list[2]
	ctx := context.Background()
	addr, release, err := s.Acquire(ctx, &st)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr

	body := bytes.Repeat([]byte("siteplex"), 128<<10) // 1 MiB
	resp, err := http.Post(base+"/upload/", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var up struct {
		Size   int    `json:"size"`
		SHA256 string `json:"sha256"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&up)
	resp.Body.Close()
	sum := sha256.Sum256(body)
	if up.Size != len(body) || up.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("upload echo %+v", up)
	}

	resp, err = http.Get(base + "/stream/?n=3&delay=0.05")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "chunk 0\nchunk 1\nchunk 2\n" {
		t.Errorf("stream %q", b)
	}

	resp, err = http.Get(base + "/env/?k=PYTHONUNBUFFERED")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"PYTHONUNBUFFERED": "1"}` {
		t.Errorf("env %s", b)
	}
	release()

	if _, err := http.Get(base + "/die/?code=3"); err == nil {
		t.Error("/die/ answered")
	}
	svWaitFor(t, 5*time.Second, "crashed", func() bool { return svStatus(t, s, st.Slug).State == Crashed })
	if got := svStatus(t, s, st.Slug); got.LastExit == nil || *got.LastExit != 3 {
		t.Errorf("after /die/: %+v, want last exit 3", got)
	}
	if !slices.Contains(svLogTexts(s, st.Slug), "fixture: /die/ called, exiting with 3") {
		t.Errorf("log %q", svLogTexts(s, st.Slug))
	}
}
