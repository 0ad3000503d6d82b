package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// djangoEnv is the environment the CLI sees in these tests: a private
// state folder for the cache key.
func djangoEnv(t *testing.T) map[string]string {
	return map[string]string{"XDG_STATE_HOME": t.TempDir()}
}

// TestSitesFromSettings: `siteplex sites` finds the database the settings
// name (dev.db, Mezzanine-style), says so, and a warm run uses the cache.
func TestSitesFromSettings(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djfixed", true)
	env := djangoEnv(t)
	for i := 0; i < 2; i++ {
		out, errOut, code := runCLI(t, dir, env, "--python", testenv.Python, "sites")
		if code != 0 || !strings.Contains(errOut, "siteplex: database sqlite dev.db (from DATABASES['default'] in mezzshape.settings)") {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if !strings.Contains(out, "gamma-example-org.localhost") || !strings.Contains(out, "never written to the hosts file") {
			t.Errorf("table:\n%s", out)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".siteplex", "django.json")); err != nil {
		t.Errorf("no cache: %v", err)
	}
	// Broken settings: one line, exit 1 (no other database to fall back on).
	if err := os.WriteFile(filepath.Join(dir, "mezzshape", "local_settings.py"), []byte("DATABASES = broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, dir, env, "--python", testenv.Python, "sites")
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "NameError: name 'broken' is not defined (mezzshape/local_settings.py:1)") {
		t.Errorf("broken settings: exit %d, stderr %q", code, errOut)
	}
}

func TestUseByNameAndDisabled(t *testing.T) {
	dir := useProject(t, "", "")
	out, errOut, code := runCLI(t, dir, nil, "use", "GHANA")
	if code != 0 || !strings.Contains(out, "SITE_ID=3: 3 gh (Ghana, example.gh)") {
		t.Errorf("use by name: exit %d\n%s%s", code, out, errOut)
	}
	_, errOut, code = runCLI(t, dir, nil, "use", "Ghanna")
	if code != 2 || !strings.Contains(errOut, "closest: 3 gh (Ghana, example.gh)") {
		t.Errorf("closest by name: exit %d %s", code, errOut)
	}

	dom := domainsProject(t)
	db := openSQLite(t, filepath.Join(dom, "db.sqlite3"))
	if _, err := db.Exec("UPDATE django_multisite_plus_site SET is_enabled = 0 WHERE site_id = 2"); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = runCLI(t, dom, nil, "use", "de")
	if code != 0 || !strings.Contains(errOut, "warning: site 2 de (Germany, www.example.de) is disabled") {
		t.Errorf("disabled site: exit %d, stderr %q", code, errOut)
	}
}

// TestHostsApplyLeavesOutThisMachine: a site whose domain is an IP address
// or localhost is never written to the hosts file; its local name is.
func TestHostsApplyLeavesOutThisMachine(t *testing.T) {
	dir := t.TempDir()
	cfg := "[sites.dev]\nid = 1\ndomain = \"127.0.0.1:8000\"\n\n[sites.loc]\nid = 2\ndomain = \"localhost\"\n\n[sites.shop]\nid = 3\ndomain = \"shop.example\"\n"
	if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hostsFile := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hostsFile, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, dir, nil, "--hosts-file", hostsFile, "hosts", "apply", "--names", "all")
	b, _ := os.ReadFile(hostsFile)
	got := string(b)
	if code != 0 || !strings.Contains(got, "dev.localhost") || !strings.Contains(got, "loc.localhost") || !strings.Contains(got, "shop.example") {
		t.Fatalf("exit %d\n%s%s\nhosts:\n%s", code, out, errOut, got)
	}
	for _, line := range strings.Split(got, "\n") {
		f := strings.Fields(line)
		for _, name := range f[min(1, len(f)):] {
			if name == "127.0.0.1" || (name == "localhost" && !strings.HasPrefix(line, "127.0.0.1 localhost")) {
				t.Errorf("hosts line %q maps this machine's own name", line)
			}
		}
	}
	if strings.Count(got, "localhost\n") != 1+strings.Count(got, ".localhost\n") {
		t.Errorf("localhost written again:\n%s", got)
	}
	if !strings.Contains(errOut, "never written to the hosts file") {
		t.Errorf("stderr does not say why: %q", errOut)
	}
}

// TestDoctorDjango: doctor's Django checks pass on a Mezzanine-shaped
// project with the overlay, fail with it off, and give framework-right
// advice.
func TestDoctorDjango(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djfixed", true)
	env := djangoEnv(t)
	env["DOCKER_HOST"] = deadDockerHost(t)
	args := []string{"--project", dir, "--python", testenv.Python, "doctor", "--json"}
	r := runSiteplexCLI(t, env, args...)
	rep, status := parseDoctorJSON(t, r.out)
	for _, name := range []string{"database", "django_settings", "site_id", "allowed_hosts", "frameworks", "overlay", "python"} {
		if status[name] != "ok" {
			t.Errorf("%s: %s, want ok\n%s", name, status[name], r.out)
		}
	}
	for _, c := range rep.Checks {
		if c.Name == "database" && !strings.Contains(c.Detail, "from DATABASES['default'] in mezzshape.settings") {
			t.Errorf("database detail %q", c.Detail)
		}
		if c.Name == "overlay" && !strings.Contains(c.Detail, filepath.Join(dir, ".siteplex", "overlay", "siteplex_overlay.py")) {
			t.Errorf("overlay detail %q", c.Detail)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte("overlay = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runSiteplexCLI(t, env, args...)
	rep, status = parseDoctorJSON(t, r.out)
	if r.code != 1 || status["site_id"] != "fail" || status["allowed_hosts"] != "fail" {
		t.Errorf("overlay off: exit %d, site_id %s, allowed_hosts %s", r.code, status["site_id"], status["allowed_hosts"])
	}
	for _, c := range rep.Checks {
		if c.Name == "site_id" && (!strings.Contains(c.Detail, "SITE_ID = 1 is fixed in mezzshape.settings") || !strings.Contains(c.Fix, "turn the overlay on")) {
			t.Errorf("site_id: %q / %q", c.Detail, c.Fix)
		}
		if c.Name == "allowed_hosts" && !strings.Contains(c.Detail, "rejects") {
			t.Errorf("allowed_hosts: %q", c.Detail)
		}
	}
}

// TestDoctorAdviceForFramework: a project on another site framework is
// never told to add django.contrib.sites.
func TestDoctorAdviceForFramework(t *testing.T) {
	testenv.NeedPython(t, "django", "django_pgschemas")
	dir := t.TempDir()
	files := map[string]string{
		"manage.py":         "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'tproj.settings')\n",
		"tproj/__init__.py": "",
		"tproj/settings.py": "SECRET_KEY = 'x'\nINSTALLED_APPS = ['django_pgschemas', 'django.contrib.contenttypes']\n" +
			"DATABASES = {'default': {'ENGINE': 'django_pgschemas.postgresql_backend', 'NAME': 'db'}}\n" +
			"TENANTS = {'public': {'APPS': ['django_pgschemas']}, 'www': {'APPS': [], 'DOMAINS': ['localhost']}}\n",
	}
	for n, b := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	empty := filepath.Join(dir, "empty.sqlite3")
	db := openSQLite(t, empty)
	if _, err := db.Exec("CREATE TABLE x (id integer)"); err != nil {
		t.Fatal(err)
	}
	env := djangoEnv(t)
	env["DOCKER_HOST"] = deadDockerHost(t)
	r := runSiteplexCLI(t, env, "--project", dir, "--python", testenv.Python, "--db", "sqlite:///"+empty, "doctor", "--json")
	if strings.Contains(r.out, "add django.contrib.sites") || strings.Contains(r.out, "django.contrib.sites must be") {
		t.Errorf("advice for a django-pgschemas project mentions adding django.contrib.sites:\n%s", r.out)
	}
	if !strings.Contains(r.out, "django-pgschemas") {
		t.Errorf("doctor does not name the framework:\n%s", r.out)
	}
}

// TestDoctorManagePyAssigns: when manage.py assigns DJANGO_SETTINGS_MODULE
// (instead of setdefault), no check says the overlay sets SITE_ID:
// django_settings, site_id and overlay all say it cannot take effect.
func TestDoctorManagePyAssigns(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djpackage", true)
	testenv.ManagePyAssigns(t, dir, "proj.settings.dev")
	env := djangoEnv(t)
	env["DOCKER_HOST"] = deadDockerHost(t)
	r := runSiteplexCLI(t, env, "--project", dir, "--python", testenv.Python, "doctor", "--json")
	rep, status := parseDoctorJSON(t, r.out)
	if r.code != 1 || status["django_settings"] != "fail" || status["site_id"] != "fail" || status["overlay"] != "fail" {
		t.Errorf("exit %d, django_settings %s, site_id %s, overlay %s\n%s", r.code, status["django_settings"], status["site_id"], status["overlay"], r.out)
	}
	for _, c := range rep.Checks {
		switch c.Name {
		case "site_id", "overlay", "allowed_hosts":
			if strings.Contains(c.Detail, "the overlay sets") || strings.Contains(c.Detail, "the overlay adds") || strings.Contains(c.Detail, "the overlay gives") {
				t.Errorf("%s claims the overlay works: %q", c.Name, c.Detail)
			}
		}
		switch c.Name {
		case "site_id", "overlay":
			if !strings.Contains(c.Detail, "cannot take effect: manage.py assigns") || !strings.Contains(c.Fix, `os.environ.setdefault("DJANGO_SETTINGS_MODULE", "proj.settings.dev")`) {
				t.Errorf("%s: %q / %q", c.Name, c.Detail, c.Fix)
			}
		}
	}
}
