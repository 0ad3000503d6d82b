package supervisor

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/sites/django"
)

// The tests in this file run the supervisor with Config.Preload over the
// real Django fixture (testdata/django with 8 sites, /usr/bin/python3):
// site processes forked from a warm parent (docs/preload.md).

// svPreload loads the 8-site fixture in root (a fresh copy when root is
// "") and returns a supervisor with preload over it.
func svPreload(t *testing.T, root string, cfg Config) (*Supervisor, []sites.Site) {
	t.Helper()
	if root == "" {
		root = testenv.DjangoFixtureSites(t, "django", 8)
	}
	p, list := svLoadDjango(t, root)
	if len(list) != 8 {
		t.Fatalf("fixture sites: %d, want 8", len(list))
	}
	cfg.Preload = true
	return svStart(t, p, cfg, list), list
}

// svLoadDjango loads the Django project in root, asking Debian's Python
// (Options.Python), and its sites.
func svLoadDjango(t *testing.T, root string) (*sites.Project, []sites.Site) {
	t.Helper()
	state := t.TempDir()
	p, err := sites.Load(sites.Options{Project: root, Python: testenv.Python, Getenv: func(k string) string {
		if k == "XDG_STATE_HOME" {
			return state
		}
		return os.Getenv(k)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return p, svDBSites(t, p)
}

// svWho acquires st, asks /whoami/ and releases.
func svWho(t *testing.T, s *Supervisor, st sites.Site) testenv.Whoami {
	t.Helper()
	addr, release, err := s.Acquire(context.Background(), &st)
	if err != nil {
		t.Fatalf("%s: %v", st.Slug, err)
	}
	defer release()
	return testenv.GetWhoami(t, addr, st.Domain)
}

func TestPreloadEverySiteForkedWithItsSiteID(t *testing.T) {
	s, list := svPreload(t, "", Config{})
	parent := 0
	for _, st := range list {
		w := svWho(t, s, st)
		if w.SiteID != st.ID || w.SiteName != st.Name {
			t.Errorf("%s: whoami %+v, want site %d %q", st.Slug, w, st.ID, st.Name)
		}
		ss := svStatus(t, s, st.Slug)
		if !ss.Preloaded || ss.PreloadReason != "" || ss.PID != w.PID {
			t.Errorf("%s: status %+v, want preloaded pid %d", st.Slug, ss, w.PID)
		}
		if parent == 0 {
			parent = proc.Parent(w.PID)
		}
		if got := proc.Parent(w.PID); got != parent {
			t.Errorf("%s: pid %d's parent is %d, want the warm parent %d", st.Slug, w.PID, got, parent)
		}
	}
	pre := s.Preload()
	if pre == nil || !pre.On || pre.ParentPID != parent || pre.Reason != "" {
		t.Errorf("Preload() = %+v, want on, parent %d, no reason", pre, parent)
	}
	if !slices.ContainsFunc(svLogTexts(s, list[0].Slug), func(l string) bool {
		return l == "forked from the warm parent (pid "+strconv.Itoa(parent)+")"
	}) {
		t.Errorf("no fork line in %q", svLogTexts(s, list[0].Slug))
	}
}

func TestPreloadRefusedWhereItCannotApply(t *testing.T) {
	p, err := sites.Load(sites.Options{Project: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"single", Config{Mode: Single}, "--mode single runs one process for every site"},
		{"custom command", Config{Command: []string{"gunicorn", "-b", "127.0.0.1:{port}", "proj.wsgi"}},
			"the command is gunicorn -b 127.0.0.1:{port} proj.wsgi (--command or process.command in siteplex.toml); preload forks only Django's runserver"},
		{"runserver with more options", Config{Command: []string{"python3", "manage.py", "runserver", "127.0.0.1:{port}", "--noreload", "--nothreading"}},
			"preload forks only Django's runserver, <python> manage.py runserver 127.0.0.1:{port} --noreload"},
		{"docker", Config{Runner: startFunc(nil)}, "the sites run in containers (--runner docker)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Project, tc.cfg.Preload = p, true
			s := New(tc.cfg, nil)
			defer s.Close(context.Background())
			pre := s.Preload()
			if pre == nil || pre.On || !strings.Contains(pre.Reason, tc.want) {
				t.Errorf("Preload() = %+v, want off because %q", pre, tc.want)
			}
			if _, ok := s.runner.(*preloadRunner); ok {
				t.Error("the preload runner is in use")
			}
		})
	}
	s := New(Config{Project: p, Command: []string{"/x/python", "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"}, Preload: true}, nil)
	defer s.Close(context.Background())
	if pre := s.Preload(); pre == nil || !pre.On {
		t.Errorf("runserver with its own interpreter: Preload() = %+v, want on", pre)
	}
	s = New(Config{Project: p}, nil)
	defer s.Close(context.Background())
	if pre := s.Preload(); pre != nil {
		t.Errorf("without Preload: Preload() = %+v, want nil", pre)
	}
}

// startFunc is a Runner made of a function.
type startFunc func(ctx context.Context, spec ProcessSpec) (Proc, error)

func (f startFunc) Start(ctx context.Context, spec ProcessSpec) (Proc, error) { return f(ctx, spec) }

func TestPreloadKill9OfAChildThenOfTheParent(t *testing.T) {
	s, list := svPreload(t, "", Config{})
	a, b := list[0], list[1]
	wa, wb := svWho(t, s, a), svWho(t, s, b)
	parent := s.Preload().ParentPID

	// kill -9 of a child: crashed (137), the next request forks it again
	// from the same warm parent.
	if err := syscall.Kill(wa.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	svWaitFor(t, 10*time.Second, "crashed", func() bool { return svStatus(t, s, a.Slug).State == Crashed })
	if st := svStatus(t, s, a.Slug); st.LastExit == nil || *st.LastExit != 137 {
		t.Errorf("after kill -9 of the child: %+v, want last exit 137", st)
	}
	again := svWho(t, s, a)
	if again.PID == wa.PID || again.SiteID != a.ID || proc.Parent(again.PID) != parent {
		t.Errorf("after kill -9: pid %d (was %d), site %d, parent %d, want a new child of %d", again.PID, wa.PID, again.SiteID, proc.Parent(again.PID), parent)
	}

	// kill -9 of the parent: its children die with it and are crashed;
	// the next request boots a new parent.
	if err := syscall.Kill(parent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, st := range []sites.Site{a, b} {
		svWaitFor(t, 10*time.Second, st.Slug+" crashed", func() bool { return svStatus(t, s, st.Slug).State == Crashed })
	}
	for _, pid := range []int{again.PID, wb.PID, parent} {
		svWaitFor(t, 5*time.Second, "pid "+strconv.Itoa(pid)+" gone", func() bool { return !proc.Alive(pid) })
	}
	after := svWho(t, s, b)
	next := s.Preload().ParentPID
	if after.SiteID != b.ID || next == 0 || next == parent || proc.Parent(after.PID) != next {
		t.Errorf("after kill -9 of the parent: site %d pid %d (parent %d), Preload() parent %d, old parent %d",
			after.SiteID, after.PID, proc.Parent(after.PID), next, parent)
	}
	if !svStatus(t, s, b.Slug).Preloaded {
		t.Errorf("%s after a new parent: %+v, want preloaded", b.Slug, svStatus(t, s, b.Slug))
	}
	if !slices.ContainsFunc(svLogTexts(s, PreloadLog), func(l string) bool {
		return strings.Contains(l, "pid "+strconv.Itoa(parent)+" was killed by signal 9") && strings.Contains(l, "the next start boots a new one")
	}) {
		t.Errorf("the preload log does not say the parent was killed: %q", svLogTexts(s, PreloadLog))
	}
}

// Settings that raise at import: the warm parent cannot boot, the sites
// start the plain way, die with the traceback and go to backoff; fixing
// the settings (a code change) boots a warm parent again.
func TestPreloadBrokenSettingsBackoffAndRecovery(t *testing.T) {
	s, list := svPreload(t, "", Config{})
	st := list[2]
	if w := svWho(t, s, st); w.SiteID != st.ID {
		t.Fatalf("whoami %+v", w)
	}
	fix := svBreakSettings(t, s)
	s.ReloadCode()
	svWantBackoff(t, s, st)
	pre := s.Preload()
	if !pre.On || pre.ParentPID != 0 || !strings.Contains(pre.Reason, "failed to import: RuntimeError: siteplex test: settings are broken") {
		t.Errorf("Preload() = %+v, want on, no parent, the import error as the reason", pre)
	}
	fix()
	s.ReloadCode()
	w := svWho(t, s, st)
	if w.SiteID != st.ID {
		t.Errorf("after the fix: whoami %+v", w)
	}
	if pre := s.Preload(); pre.ParentPID == 0 || pre.Reason != "" || proc.Parent(w.PID) != pre.ParentPID || !svStatus(t, s, st.Slug).Preloaded {
		t.Errorf("after the fix: Preload() = %+v, pid %d's parent %d, status %+v", pre, w.PID, proc.Parent(w.PID), svStatus(t, s, st.Slug))
	}
}

// A settings module that starts a thread at import cannot be forked: the
// sites start the plain way and the reason names the thread.
func TestPreloadThreadAtImportFallsBackToPlain(t *testing.T) {
	root := testenv.DjangoFixtureSites(t, "django", 8)
	testenv.AppendFile(t, root, "fixtureproj/settings.py",
		"\nimport threading, time\nthreading.Thread(target=time.sleep, args=(3600,), name='metrics-flusher', daemon=True).start()\n")
	s, list := svPreload(t, root, Config{})
	const want = "threads running after the project loaded: 'metrics-flusher'"
	for _, st := range list[:2] {
		w := svWho(t, s, st)
		ss := svStatus(t, s, st.Slug)
		if w.SiteID != st.ID || ss.Preloaded || !strings.Contains(ss.PreloadReason, want) {
			t.Errorf("%s: whoami %+v, status %+v, want started plain because %q", st.Slug, w, ss, want)
		}
		if got := proc.Parent(w.PID); got != os.Getpid() {
			t.Errorf("%s: pid %d's parent is %d, want siteplex (%d)", st.Slug, w.PID, got, os.Getpid())
		}
		if !slices.Contains(svLogTexts(s, st.Slug), "started the plain way: "+ss.PreloadReason) {
			t.Errorf("%s: no plain-start line in %q", st.Slug, svLogTexts(s, st.Slug))
		}
	}
	if pre := s.Preload(); !pre.On || pre.ParentPID != 0 || !strings.Contains(pre.Reason, want) {
		t.Errorf("Preload() = %+v, want the thread as the reason", pre)
	}
}

// A forked child's output goes to its site's ring and log file, as a plain
// process's does; the parent's own lines go to PreloadLog.
func TestPreloadLogs(t *testing.T) {
	s, list := svPreload(t, "", Config{})
	st := list[3]
	w := svWho(t, s, st)
	port := strconv.Itoa(svStatus(t, s, st.Slug).Port)
	wantLines := []string{"Starting development server at http://127.0.0.1:" + port + "/", `"GET /whoami/ HTTP/1.1" 200`}
	svWaitFor(t, 10*time.Second, "the request's log line", func() bool {
		return slices.ContainsFunc(svLogTexts(s, st.Slug), func(l string) bool { return strings.Contains(l, wantLines[1]) })
	})
	file, err := os.ReadFile(filepath.Join(s.stateDir, "logs", st.Slug+".log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range wantLines {
		if !slices.ContainsFunc(svLogTexts(s, st.Slug), func(l string) bool { return strings.Contains(l, want) }) {
			t.Errorf("ring of %s lacks %q: %q", st.Slug, want, svLogTexts(s, st.Slug))
		}
		if !strings.Contains(string(file), want) {
			t.Errorf("%s.log lacks %q:\n%s", st.Slug, want, file)
		}
	}
	if !strings.Contains(string(file), "forked from the warm parent (pid "+strconv.Itoa(proc.Parent(w.PID))+")") {
		t.Errorf("%s.log does not say the process was forked:\n%s", st.Slug, file)
	}
	if !slices.ContainsFunc(svLogTexts(s, PreloadLog), func(l string) bool { return strings.HasPrefix(l, "warm parent ready: pid ") }) {
		t.Errorf("preload log: %q", svLogTexts(s, PreloadLog))
	}
}

// With the overlay (its environment built as the engine does, with
// Project.WriteOverlay and Overlay.ProcessEnv), a forked child becomes its
// site through the overlay's own reconfigure(): projects that hard-code
// SITE_ID, keep their settings in a package, or make SITE_ID an object
// each serve every site from one warm parent, and the identity probe says
// ✓ for each.
func TestPreloadWithTheOverlay(t *testing.T) {
	for _, name := range []string{"djfixed", "djpackage", "djsiteid"} {
		t.Run(name, func(t *testing.T) {
			p, list := svLoadDjango(t, testenv.DjangoFixture(t, name, true))
			ctx := context.Background()
			ov, err := p.WriteOverlay(ctx)
			if err != nil {
				t.Fatal(err)
			}
			secret, err := django.NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			for i := range list {
				s := &list[i]
				env, err := ov.ProcessEnv(django.ProcessOverlay{Mode: django.PerSite, SiteID: s.ID,
					AllowedHosts: []string{s.LocalDomain, s.Domain}, Secret: secret, Key: s.Slug})
				if err != nil {
					t.Fatal(err)
				}
				s.Env = map[string]string{}
				for _, kv := range env {
					k, v, _ := strings.Cut(kv, "=")
					s.Env[k] = v
				}
			}
			sv := svStart(t, p, Config{Preload: true}, list)
			parent := 0
			for _, s := range list {
				addr, release, err := sv.Acquire(ctx, &s)
				if err != nil {
					t.Fatalf("%s: %v", s.Slug, err)
				}
				for _, host := range []string{s.LocalDomain, strings.Split(s.Domain, ":")[0]} {
					req, _ := django.NewProbeRequest(ctx, "http://"+addr, host, secret, 0)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if v := django.CheckResponse(django.Expect{Host: host, SiteID: s.ID}, resp.StatusCode, resp.Header, body); !v.OK {
						t.Errorf("%s on %s: %s", s.Slug, host, v)
					}
				}
				release()
				ss := svStatus(t, sv, s.Slug)
				if !ss.Preloaded {
					t.Errorf("%s: %+v, want preloaded", s.Slug, ss)
					continue
				}
				if parent == 0 {
					parent = proc.Parent(ss.PID)
				}
				if got := proc.Parent(ss.PID); got != parent {
					t.Errorf("%s: forked from %d, want one warm parent for every site (%d)", s.Slug, got, parent)
				}
			}
			if !slices.ContainsFunc(svLogTexts(sv, PreloadLog), func(l string) bool {
				return strings.Contains(l, "each child becomes its site through the overlay")
			}) {
				t.Errorf("preload log: %q", svLogTexts(sv, PreloadLog))
			}
		})
	}
}

// Which sites share a warm parent: the same interpreter, folder and
// environment, per-site variables aside.
func TestWarmParentFits(t *testing.T) {
	spec := func(id int64, env ...string) ProcessSpec {
		base := []string{"PATH=/usr/bin", "PYTHONUNBUFFERED=1", "DJANGO_SETTINGS_MODULE=proj.settings",
			"SITE_ID=" + strconv.FormatInt(id, 10), "PORT=" + strconv.FormatInt(8000+id, 10), "SITEPLEX_PROC=t" + strconv.FormatInt(id, 10)}
		return ProcessSpec{Site: sites.Site{ID: id}, Argv: []string{"/usr/bin/python3", "manage.py", "runserver", "127.0.0.1:1", "--noreload"}, Dir: "/p", Env: append(base, env...)}
	}
	tests := []struct {
		name         string
		parent, site ProcessSpec
		want         bool
	}{
		{"another site", spec(2), spec(1), true},
		{"overlay variables", spec(2, "SITEPLEX_SITE_ID=2", "SITEPLEX_ALLOWED_HOSTS=b.localhost", "MEZZANINE_SITE_ID=2"),
			spec(1, "SITEPLEX_SITE_ID=1", "SITEPLEX_ALLOWED_HOSTS=a.localhost", "MEZZANINE_SITE_ID=1"), true},
		{"the variable SITE_ID follows, any name", spec(2, "TENANT=2"), spec(1, "TENANT=1"), true},
		{"a value that is only site 1's id by chance", spec(2, "WORKERS=7"), spec(1, "WORKERS=1"), false},
		{"another settings module", spec(2), spec(1, "DJANGO_SETTINGS_MODULE=proj.other"), false},
		{"a variable more", spec(2), spec(1, "THEME=dark"), false},
		{"no SITEPLEX_SITE_ID (not a django_site row)", spec(2, "SITEPLEX_SITE_ID=2"), spec(1), false},
		{"another interpreter", spec(2), func() ProcessSpec {
			s := spec(1)
			s.Argv = append([]string{"/venv/bin/python"}, s.Argv[1:]...)
			return s
		}(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := newWarmParent(tt.parent).fits(tt.site); got != tt.want {
				t.Errorf("fits = %v, want %v", got, tt.want)
			}
		})
	}
}

// Supervision is the same for forked processes: twenty concurrent first
// requests wait for one process, --max-running stops the least recently
// used, the idle timeout stops the rest, and the warm parent stays for the
// next start.
func TestPreloadHeldRequestsMaxRunningAndIdle(t *testing.T) {
	s, list := svPreload(t, "", Config{MaxRunning: 2, IdleTimeout: 3 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx) // the idle reaper
	var (
		mu   sync.Mutex
		pids = map[int]bool{}
		wg   sync.WaitGroup
	)
	for range 20 {
		wg.Go(func() {
			st := list[0]
			addr, release, err := s.Acquire(ctx, &st)
			if err != nil {
				t.Error(err)
				return
			}
			defer release()
			w := testenv.GetWhoami(t, addr, st.Domain)
			mu.Lock()
			pids[w.PID] = true
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(pids) != 1 {
		t.Errorf("20 concurrent first requests reached %d processes, want 1", len(pids))
	}
	parent := s.Preload().ParentPID
	for _, st := range list[1:3] {
		svWho(t, s, st)
	}
	running := 0
	for _, st := range list[:3] {
		if svStatus(t, s, st.Slug).State == Running {
			running++
		}
	}
	if running != 2 || svStatus(t, s, list[0].Slug).State == Running {
		t.Errorf("max-running 2: %d running, %s %s", running, list[0].Slug, svStatus(t, s, list[0].Slug).State)
	}
	svWaitFor(t, 30*time.Second, "every site stopped when idle", func() bool {
		for _, st := range list[:3] {
			if svStatus(t, s, st.Slug).State != Stopped {
				return false
			}
		}
		return true
	})
	if pre := s.Preload(); pre.ParentPID != parent || !proc.Alive(parent) {
		t.Errorf("after the idle stop: Preload() = %+v, want the warm parent %d still there", pre, parent)
	}
	if w := svWho(t, s, list[0]); proc.Parent(w.PID) != parent {
		t.Errorf("the next start: pid %d forked from %d, want %d", w.PID, proc.Parent(w.PID), parent)
	}
}
