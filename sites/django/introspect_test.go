package django

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestIntrospectFixtures asks each fixture project's real Django.
func TestIntrospectFixtures(t *testing.T) {
	tests := []struct {
		fixture, module, from string
		kind                  string
		value                 int64
		envVar                string
		dbName                string // relative to the project root
		allowed               []string
	}{
		{"djfixed", "mezzshape.settings", "manage.py", KindInt, 1, "", "dev.db", []string{"localhost"}},
		{"djpackage", "proj.settings.dev", "manage.py", KindInt, 1, "", "var/site.sqlite3", []string{".example.com"}},
		{"djsiteid", "siteidproj.settings", "manage.py", KindObject, 0, "", "sites.db", []string{}},
		{"djmultisite", "msproj.settings", "manage.py", KindObject, 0, "", "multisite.db", []string{}},
		{"django", "fixtureproj.settings", "manage.py", KindEnv, 1, "SITE_ID", "db.sqlite3", []string{"*"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			t.Parallel()
			dir := fixture(t, tt.fixture, false)
			info := mustIntrospect(t, dir)
			if info.SettingsModule != tt.module || info.SettingsFrom != tt.from {
				t.Errorf("settings %s from %s, want %s from %s", info.SettingsModule, info.SettingsFrom, tt.module, tt.from)
			}
			if info.SiteID.Kind != tt.kind || info.SiteID.Value != tt.value || info.SiteID.EnvVar != tt.envVar {
				t.Errorf("SITE_ID %+v, want %s %d %s", info.SiteID, tt.kind, tt.value, tt.envVar)
			}
			d := info.Databases["default"]
			name := d.Name
			if filepath.IsAbs(name) {
				name, _ = filepath.Rel(dir, name)
			}
			if d.Family() != FamilySQLite || name != tt.dbName {
				t.Errorf("DATABASES default %s, want sqlite %s", d, tt.dbName)
			}
			if strings.Join(info.AllowedHosts, ",") != strings.Join(tt.allowed, ",") {
				t.Errorf("ALLOWED_HOSTS %q, want %q", info.AllowedHosts, tt.allowed)
			}
			if lazy := tt.fixture == "djmultisite"; lazy != (info.AllowedHostsLazy != "") || lazy && (info.AllowedHostsLazy != "multisite.hosts.LazyHosts" || !info.Frameworks.Multisite) {
				t.Errorf("ALLOWED_HOSTS class %q, frameworks %+v", info.AllowedHostsLazy, info.Frameworks)
			}
			if !info.Frameworks.Sites || info.Table("sites.Site", "") != "django_site" {
				t.Errorf("frameworks %+v tables %v", info.Frameworks, info.Tables)
			}
			if !strings.HasPrefix(info.Django, "3.2") {
				t.Errorf("Django %q", info.Django)
			}
			var settingsFile bool
			for _, f := range info.SettingsFiles {
				if strings.Contains(f, "settings") {
					settingsFile = true
				}
				if !strings.HasPrefix(f, dir) {
					t.Errorf("settings file %s outside the project", f)
				}
			}
			if !settingsFile {
				t.Errorf("settings files %v lack the settings", info.SettingsFiles)
			}
		})
	}
	t.Run("object default", func(t *testing.T) {
		info := mustIntrospect(t, fixture(t, "djsiteid", false))
		s := info.SiteID
		if s.Class != "siteidproj.threadlocals.SiteID" || s.Default == nil || *s.Default != 1 || !s.Settable {
			t.Errorf("SITE_ID %+v", s)
		}
		if got := s.String(); got != "SITE_ID = SiteID(default=1)" {
			t.Errorf("String() = %q", got)
		}
	})
}

// writeProject makes a small project from a settings source.
func writeProject(t *testing.T, settings string) string {
	t.Helper()
	testenv.NeedPython(t, "django")
	dir := t.TempDir()
	files := map[string]string{
		"manage.py":           "import os, sys\nif __name__ == '__main__':\n    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tproj.settings')\n    from django.core.management import execute_from_command_line\n    execute_from_command_line(sys.argv)\n",
		"tproj/__init__.py":   "",
		"tproj/settings.py":   settings,
		"tproj/unrelated.txt": "",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const pgSettings = `import os
SECRET_KEY = "x"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.sites"]
SITE_ID = int(os.environ.get("DJANGO_SITE", "4"))
DATABASES = {"default": {"ENGINE": "django_tenants.postgresql_backend", "NAME": "db", "USER": "app",
    "PASSWORD": "pw-s3cret-value", "HOST": os.environ.get("DBHOST", "db.internal"), "PORT": 5433,
    "OPTIONS": {"sslmode": "disable", "passfile": "/nope", "password_extra": "pw-other-secret"}}}
try:
    from .local_settings import *
except ImportError:
    pass
`

// counter wraps the real Python in a script that counts its runs.
func counter(t *testing.T) (python string, runs func() int) {
	t.Helper()
	d := t.TempDir()
	count := filepath.Join(d, "count")
	python = filepath.Join(d, "python")
	script := "#!/bin/sh\necho run >> " + count + "\nexec " + testenv.Python + " \"$@\"\n"
	if err := os.WriteFile(python, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return python, func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "run")
	}
}

// TestLoadCache: the second Load starts no Python; editing a settings
// file, creating the local_settings.py the settings look for, changing a
// variable they read, or the interpreter, each starts it again.
func TestLoadCache(t *testing.T) {
	dir := writeProject(t, pgSettings)
	py, runs := counter(t)
	req := testRequest(t, dir)
	req.Python = py
	req.Env = append(os.Environ(), "DBHOST=db.one")
	load := func(wantRuns int, wantCached bool) *Info {
		t.Helper()
		info, out, err := Load(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if runs() != wantRuns || out.Cached != wantCached {
			t.Fatalf("Python ran %d times (cached %v), want %d (cached %v)", runs(), out.Cached, wantRuns, wantCached)
		}
		return info
	}
	info := load(1, false)
	d := info.Databases["default"]
	if d.Password != "pw-s3cret-value" || d.SecretOptions["password_extra"] != "pw-other-secret" || d.Family() != FamilyPostgres || d.Port != "5433" || d.Host != "db.one" {
		t.Fatalf("database %+v", d)
	}
	if info.SiteID.Kind != KindEnv || info.SiteID.EnvVar != "DJANGO_SITE" || info.SiteID.Value != 4 {
		t.Errorf("SITE_ID %+v", info.SiteID)
	}
	raw, err := os.ReadFile(req.File)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "s3cret") || strings.Contains(string(raw), "other-secret") {
		t.Fatalf("the cache holds a password in clear:\n%s", raw)
	}
	if st, _ := os.Stat(req.File); st.Mode().Perm() != 0o600 {
		t.Errorf("cache mode %v", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Join(req.KeyDir, "cache.key")); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v", st)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".siteplex", ".gitignore")); !strings.Contains(string(b), "*") {
		t.Errorf(".siteplex/.gitignore = %q", b)
	}
	info = load(1, true)
	if info.Databases["default"].Password != "pw-s3cret-value" {
		t.Errorf("cached password not restored")
	}
	// An unrelated file and an unrelated variable change nothing.
	touch(t, filepath.Join(dir, "tproj", "unrelated.txt"))
	req.Env = append(req.Env, "UNRELATED=1")
	load(1, true)

	touch(t, filepath.Join(dir, "tproj", "settings.py"))
	load(2, false)
	load(2, true)
	if err := os.WriteFile(filepath.Join(dir, "tproj", "local_settings.py"), []byte("ALLOWED_HOSTS = ['x.test']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	info = load(3, false)
	if strings.Join(info.AllowedHosts, ",") != "x.test" {
		t.Errorf("ALLOWED_HOSTS %v after local_settings.py appeared", info.AllowedHosts)
	}
	req.Env = append(req.Env, "DBHOST=db.two")
	info = load(4, false)
	if info.Databases["default"].Host != "db.two" {
		t.Errorf("host %q after DBHOST changed", info.Databases["default"].Host)
	}
	// The env file is part of the key (its variables reach the settings).
	envFile := filepath.Join(dir, ".env-local")
	if err := os.WriteFile(envFile, []byte("X=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	req.EnvFile = envFile
	load(5, false)
	load(5, true)
	touch(t, envFile)
	load(6, false)
	// Without a key folder, passwords are not cached: every Load runs.
	req.KeyDir = ""
	touch(t, filepath.Join(dir, "tproj", "settings.py"))
	load(7, false)
	load(8, false)
}

func touch(t *testing.T, p string) {
	t.Helper()
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
}

// TestLoadErrors: broken settings give one line naming what ran and the
// last line of the traceback with the file and line; the failure is
// cached until the settings change.
func TestLoadErrors(t *testing.T) {
	dir := writeProject(t, "SECRET_KEY = 'x'\nINSTALLED_APPS = []\nDATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'postgres://u:hunter2@h/db'}}\nSITE_ID = undefined_name\n")
	py, runs := counter(t)
	req := testRequest(t, dir)
	req.Python = py
	for i := 0; i < 2; i++ {
		_, out, err := Load(context.Background(), req)
		e, ok := IsError(err)
		if !ok {
			t.Fatalf("err = %v", err)
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, "NameError: name 'undefined_name' is not defined (tproj/settings.py:4)") ||
			!strings.Contains(msg, "ran "+py+" <siteplex introspection> in "+dir) || e.Stage != "settings" || e.NoDjango() {
			t.Errorf("error %q (stage %s)", msg, e.Stage)
		}
		if out.Cached != (i == 1) || runs() != 1 {
			t.Errorf("run %d: cached %v, Python ran %d times", i, out.Cached, runs())
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tproj", "settings.py"), []byte("SECRET_KEY = 'x'\nSITE_ID = (\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := Load(context.Background(), req)
	if err == nil || !strings.Contains(err.Error(), "SyntaxError") || !strings.Contains(err.Error(), "tproj/settings.py:2") || runs() != 2 {
		t.Errorf("syntax error: %v (runs %d)", err, runs())
	}
	// Settings that wait forever meet the timeout, which is not cached.
	if err := os.WriteFile(filepath.Join(dir, "tproj", "settings.py"), []byte("import time\ntime.sleep(60)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	req.Timeout = 2 * time.Second
	_, _, err = Load(context.Background(), req)
	if e, ok := IsError(err); !ok || e.Stage != "timeout" || !strings.Contains(err.Error(), "timed out after 2s") {
		t.Errorf("timeout: %v", err)
	}
	if _, _, err = Load(context.Background(), req); runs() != 4 {
		t.Errorf("a timeout was cached (runs %d): %v", runs(), err)
	}
}

// TestLoadNoDjango: an interpreter without Django is a NoDjango error,
// cached until its sys.path folders change.
func TestLoadNoDjango(t *testing.T) {
	dir := writeProject(t, "SECRET_KEY = 'x'\n")
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(testenv.Python, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		testenv.Missing(t, "python3 -m venv: %v %s", err, out)
	}
	req := testRequest(t, dir)
	req.Python = filepath.Join(venv, "bin", "python")
	_, _, err := Load(context.Background(), req)
	e, ok := IsError(err)
	if !ok || !e.NoDjango() || !strings.Contains(err.Error(), "No module named 'django'") {
		t.Fatalf("err = %v", err)
	}
	if _, out, _ := Load(context.Background(), req); !out.Cached {
		t.Errorf("the failure was not cached")
	}
	// "Installing" Django into the venv changes its site-packages folder.
	sp, _ := filepath.Glob(filepath.Join(venv, "lib", "python3*", "site-packages"))
	if len(sp) != 1 {
		t.Fatalf("site-packages: %v", sp)
	}
	if err := os.WriteFile(filepath.Join(sp[0], "django.pth"), []byte("/usr/lib/python3/dist-packages\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	touch(t, sp[0])
	info, out, err := Load(context.Background(), req)
	if err != nil || out.Cached || info.SettingsModule != "tproj.settings" {
		t.Errorf("after installing Django: %v (cached %v)", err, out.Cached)
	}
}

func TestGuessSettings(t *testing.T) {
	tests := []struct {
		name             string
		files            map[string]string
		envFile, environ string
		want, from       string
		assigns          bool
	}{
		{"setdefault", map[string]string{"manage.py": `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings.dev")`}, "", "", "proj.settings.dev", "manage.py", false},
		{"env file wins", map[string]string{"manage.py": `os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.settings')`}, "b.settings", "c.settings", "b.settings", "DJANGO_SETTINGS_MODULE in .env", false},
		{"environment", map[string]string{"manage.py": `os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'a.settings')`}, "", "c.settings", "c.settings", "$DJANGO_SETTINGS_MODULE", false},
		{"assignment beats all", map[string]string{"manage.py": `os.environ["DJANGO_SETTINGS_MODULE"] = "a.settings"`}, "b.settings", "", "a.settings", "manage.py", true},
		{"mezzanine", map[string]string{"manage.py": `settings_module = "%s.settings" % real_project_name("shop")`}, "", "", "shop.settings", "manage.py", false},
		{"one package", map[string]string{"manage.py": "", "site/__init__.py": "", "site/settings.py": ""}, "", "", "site.settings", "guess (site/settings)", false},
		{"aldryn", map[string]string{"manage.py": "from aldryn_django import startup", "settings.py": ""}, "", "", "settings", "guess (settings.py)", false},
		{"nothing", map[string]string{"manage.py": ""}, "", "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, b := range tt.files {
				p := filepath.Join(dir, n)
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(b), 0o644)
			}
			g := GuessSettings(dir, tt.envFile, ".env", tt.environ)
			if g.Module != tt.want || g.From != tt.from || g.ManagePyAssigns != tt.assigns {
				t.Errorf("got %+v, want %s from %s", g, tt.want, tt.from)
			}
		})
	}
}
