package preload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// Projects that cannot be preloaded: StartParent returns *Unavailable
// with a one-line reason the UI can show, and no process is left.
func TestStartParentUnavailable(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, dir string) // changes the fixture copy
		python  func(t *testing.T) string      // "" = testenv.Python
		want    []string                       // in Reason
	}{
		{
			name: "settings raise at import",
			prepare: func(t *testing.T, dir string) {
				appendFile(t, dir, "fixtureproj/settings.py", "\nraise RuntimeError('settings exploded on purpose')\n")
			},
			want: []string{"settings module fixtureproj.settings failed to import", "RuntimeError: settings exploded on purpose"},
		},
		{
			name: "a thread started at import",
			prepare: func(t *testing.T, dir string) {
				appendFile(t, dir, "fixtureproj/settings.py",
					"\nimport threading, time\nthreading.Thread(target=time.sleep, args=(3600,), name='metrics-flusher', daemon=True).start()\n")
			},
			want: []string{"threads running after the project loaded", "'metrics-flusher'"},
		},
		{
			name: "a database connection that does not close",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, dir, "fixtureproj/stickydb/__init__.py", "")
				writeFile(t, dir, "fixtureproj/stickydb/base.py",
					"from django.db.backends.sqlite3.base import DatabaseWrapper as Base\n\n"+
						"class DatabaseWrapper(Base):\n    def close(self):\n        pass\n")
				appendFile(t, dir, "fixtureproj/settings.py", "\nDATABASES['default']['ENGINE'] = 'fixtureproj.stickydb'\n")
			},
			want: []string{"database connection 'default' stays open"},
		},
		{
			name: "runserver replaced by an app",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, dir, "otherserver/__init__.py", "")
				writeFile(t, dir, "otherserver/management/__init__.py", "")
				writeFile(t, dir, "otherserver/management/commands/__init__.py", "")
				writeFile(t, dir, "otherserver/management/commands/runserver.py",
					"from django.core.management.commands.runserver import Command as Base\n\n"+
						"class Command(Base):\n    def inner_run(self, *args, **options):\n        print('serving my own way')\n")
				appendFile(t, dir, "fixtureproj/settings.py", "\nINSTALLED_APPS = INSTALLED_APPS + ['otherserver']\n")
			},
			want: []string{"runserver comes from otherserver.management.commands.runserver.Command"},
		},
		{
			name: "manage.py fails before serving",
			prepare: func(t *testing.T, dir string) {
				appendFile(t, dir, "fixtureproj/settings.py", "\nDEBUG = False\nALLOWED_HOSTS = []\n")
			},
			want: []string{"manage.py runserver exited with status 1 before it served", "You must set settings.ALLOWED_HOSTS"},
		},
		{
			name: "no manage.py",
			prepare: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "manage.py")); err != nil {
					t.Fatal(err)
				}
			},
			want: []string{"no manage.py in "},
		},
		{
			name: "no Django for this Python",
			python: func(t *testing.T) string {
				// The same interpreter without site-packages (-S): no Django.
				p := filepath.Join(t.TempDir(), "python")
				writeFile(t, filepath.Dir(p), "python", "#!/bin/sh\nexec "+testenv.Python+" -S \"$@\"\n")
				if err := os.Chmod(p, 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			},
			want: []string{"Django is not importable by", "No module named 'django'"},
		},
		{
			name:   "no such interpreter",
			python: func(t *testing.T) string { return "/nonexistent/python3" },
			want:   []string{"starting /nonexistent/python3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testenv.DjangoFixture(t, "django", false)
			if tt.prepare != nil {
				tt.prepare(t, dir)
			}
			python := testenv.Python
			if tt.python != nil {
				python = tt.python(t)
			}
			out := &testenv.Buffer{}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			p, err := StartParent(ctx, ParentSpec{Python: python, Dir: dir, Env: parentEnv("fallback"), Stdout: out, Stderr: out})
			if err == nil {
				p.Close()
				t.Fatalf("StartParent succeeded; want Unavailable with %q", tt.want)
			}
			var u *Unavailable
			if !errors.As(err, &u) {
				t.Fatalf("error %T %v is not *Unavailable", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(u.Reason, w) {
					t.Errorf("Reason %q lacks %q\ndetail:\n%s\noutput:\n%s", u.Reason, w, u.Detail, out)
				}
			}
			if strings.Contains(u.Reason, "\n") {
				t.Errorf("Reason has more than one line: %q", u.Reason)
			}
		})
	}
}

// A SITE_ID the settings read as a string trips Django's sites.E101 check:
// plain runserver exits with it, and so does every forked child (the
// parent's check results are replayed), with the same message.
func TestChildReplaysCheckErrors(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	appendFile(t, dir, "fixtureproj/settings.py", "\nSITE_ID = os.environ.get('SITE_ID', '1')\n")
	p, _ := startParent(t, dir)
	if k := p.Info().SiteIDKind; k != "str" {
		t.Errorf("SiteIDKind = %q, want str", k)
	}
	s := forkNoWait(t, p, 2)
	code, err := s.Wait()
	if code != 1 || err != nil {
		t.Errorf("Wait = %d, %v; want 1 (SystemCheckError)", code, err)
	}
	if !strings.Contains(s.err.String(), "SystemCheckError") || !strings.Contains(s.err.String(), "sites.E101") {
		t.Errorf("child stderr lacks the check error:\n%s", s.err)
	}
	if !strings.Contains(s.out.String(), "Performing system checks...") {
		t.Errorf("child stdout lacks runserver's first line:\n%s", s.out)
	}
}

// AllowedHosts extends settings.ALLOWED_HOSTS in the child only.
func TestChildAllowedHosts(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	appendFile(t, dir, "fixtureproj/settings.py", "\nALLOWED_HOSTS = ['alpha.example.com']\n")
	p, _ := startParent(t, dir)
	port := testenv.MustFreePort(t)
	c, err := p.Fork(context.Background(), ChildSpec{SiteID: 2, Port: port, AllowedHosts: []string{"beta.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background(), time.Second) })
	waitAccepting(t, &site{Child: c, id: 2, out: &testenv.Buffer{}, err: &testenv.Buffer{}})
	for host, want := range map[string]int{"alpha.example.com": 200, "beta.example.com": 200, "gamma.example.org": 400} {
		if code, b, err := get(c.Addr(), host, "/whoami/"); code != want || err != nil {
			t.Errorf("Host %s: %d %v, want %d\n%.300s", host, code, err, want, b)
		}
	}
}

// A fork request for a SITE_ID the child cannot set (an object of a kind
// it does not know) is refused as Unavailable: that site starts the plain
// way. A fork that leaves SITE_ID alone still works.
func TestForkRefusesUnsettableSiteID(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	appendFile(t, dir, "fixtureproj/settings.py", `
class SiteHook:
    def __int__(self):
        return int(os.environ.get("SITE_ID", "1"))

SITE_ID = SiteHook()
SILENCED_SYSTEM_CHECKS = ["sites.E101"]
`)
	p, _ := startParent(t, dir)
	if k := p.Info().SiteIDKind; k != "other:fixtureproj.settings.SiteHook" {
		t.Errorf("SiteIDKind = %q", k)
	}
	_, err := p.Fork(context.Background(), ChildSpec{SiteID: 2, Port: testenv.MustFreePort(t)})
	var u *Unavailable
	if !errors.As(err, &u) || !strings.Contains(u.Reason, "SITE_ID is a fixtureproj.settings.SiteHook") {
		t.Fatalf("Fork = %v, want Unavailable naming the SITE_ID type", err)
	}
	s := forkNoWait(t, p, 0)
	waitAccepting(t, s)
}

// django-multisite's SITE_ID is a threading.local whose default each
// request thread re-creates from its constructor's argument: the child
// gets a new SiteID with its site as the default, seen by request threads.
// (django-multisite is not packaged for Debian: the fixture's
// multisite/threadlocals.py is a stand-in with the same shape.)
func TestChildMultisiteSiteID(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	writeFile(t, dir, "multisite/__init__.py", "")
	writeFile(t, dir, "multisite/threadlocals.py", `import threading


class SiteID(threading.local):
    def __init__(self, default=None):
        self.default = default
        self.site_id = None

    def __int__(self):
        return self.default if self.site_id is None else self.site_id
`)
	appendFile(t, dir, "fixtureproj/settings.py", `
from multisite.threadlocals import SiteID
SITE_ID = SiteID(default=1)
SILENCED_SYSTEM_CHECKS = ["sites.E101"]
`)
	appendFile(t, dir, "fixtureproj/urls.py", `
from django.conf import settings
from django.http import JsonResponse

def site_default(request):
    return JsonResponse({"site_id": int(settings.SITE_ID), "type": type(settings.SITE_ID).__name__})

urlpatterns.append(path("site-default/", site_default))
`)
	p, _ := startParent(t, dir)
	if k := p.Info().SiteIDKind; k != "multisite" {
		t.Fatalf("SiteIDKind = %q, want multisite", k)
	}
	s := fork(t, p, 5)
	_, b, err := get(s.Addr(), "", "/site-default/")
	if err != nil || string(b) != `{"site_id": 5, "type": "SiteID"}` {
		t.Errorf("/site-default/ = %s, %v; want site 5 from a SiteID", b, err)
	}
}

// A callable SITEPLEX_PRELOAD_CHILD setting runs in each child with its
// site id, after SITE_ID is set: the place to recompute values the
// settings derived from SITE_ID at import.
func TestChildHook(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	appendFile(t, dir, "fixtureproj/settings.py", `
THEME = "theme-%d" % SITE_ID

def SITEPLEX_PRELOAD_CHILD(site_id):
    from django.conf import settings
    settings.THEME = "theme-%d" % settings.SITE_ID
`)
	appendFile(t, dir, "fixtureproj/urls.py", `
from django.conf import settings
from django.http import HttpResponse

urlpatterns.append(path("theme/", lambda request: HttpResponse(settings.THEME)))
`)
	p, _ := startParent(t, dir)
	s := fork(t, p, 3)
	if _, b, err := get(s.Addr(), "", "/theme/"); err != nil || string(b) != "theme-3" {
		t.Errorf("/theme/ = %q, %v; want theme-3", b, err)
	}
}
