package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// The tests in this file run the supervisor with Config.Preload over the
// real Django fixture (testdata/django with 8 sites, /usr/bin/python3):
// site processes forked from a warm parent (docs/preload.md).

// svPreload loads the 8-site fixture in root (a fresh copy when root is
// "") and returns a supervisor with preload over it.
func svPreload(t *testing.T, root string, cfg Config) (*Supervisor, []sites.Site) {
	t.Helper()
	if root == "" {
		root = testenv.DjangoFixtureSites(t, 8)
	}
	p, err := sites.Load(sites.Options{Project: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db, ok, err := p.DatabaseSource()
	if err != nil || !ok {
		t.Fatalf("fixture database: %v %v", ok, err)
	}
	st, err := sites.Open(ctx, db, false)
	if err != nil {
		t.Fatal(err)
	}
	list, err := p.LoadSites(ctx, st)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 8 {
		t.Fatalf("fixture sites: %d, want 8", len(list))
	}
	cfg.Project = p
	cfg.Preload = true
	if cfg.Command == nil {
		cfg.Command = djangoCommand
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
	return s, list
}

// svWho acquires st, asks /whoami/ and releases.
func svWho(t *testing.T, s *Supervisor, st sites.Site) svWhoami {
	t.Helper()
	addr, release, err := s.Acquire(context.Background(), &st)
	if err != nil {
		t.Fatalf("%s: %v", st.Slug, err)
	}
	defer release()
	return svGetWhoami(t, addr, st.Domain)
}

// ppid is pid's parent process id, from /proc.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("pid %d: %v", pid, err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, _ := strconv.Atoi(f[1])
	return n
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
			parent = ppid(t, w.PID)
		}
		if got := ppid(t, w.PID); got != parent {
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

var _ = errors.New
var _ = filepath.Join
var _ = syscall.Kill
