package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// otherProjectDB copies dir's migrated var/site.sqlite3 to another file
// whose one site is other.example.net: another project's database.
func otherProjectDB(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "var", "site.sqlite3"))
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.sqlite3")
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	db := openSQLite(t, other)
	if _, err := db.Exec("DELETE FROM django_site; INSERT INTO django_site (id, domain, name) VALUES (7, 'other.example.net', 'Other')"); err != nil {
		t.Fatal(err)
	}
	return other
}

// TestStrayDatabaseURLLosesToSettings: a DATABASE_URL the project's
// settings never read (djpackage hard-codes var/site.sqlite3 in
// proj/settings/base.py) is set aside for the database Django uses, with
// one line on stderr and a doctor warning; --db still overrides.
func TestStrayDatabaseURLLosesToSettings(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djpackage", true)
	other := otherProjectDB(t, dir)
	pg := testenv.StartPostgres(t)
	pgURL := pg.CreateDB(t, "otherproject")
	pg.Exec(t, "otherproject", "CREATE TABLE django_site (id integer PRIMARY KEY, domain varchar(100), name varchar(50));\n"+
		"INSERT INTO django_site VALUES (9, 'pg.other.example', 'PG other')")

	cases := []struct {
		name    string
		env     map[string]string
		envFile string
		names   string // what the note says the variable names
	}{
		{name: "environment postgres", env: map[string]string{"DATABASE_URL": pgURL}, names: fmt.Sprintf("DATABASE_URL names postgres %s:%d/otherproject", pg.Host, pg.Port)},
		{name: "environment sqlite", env: map[string]string{"DATABASE_URL": "sqlite:///" + other}, names: "DATABASE_URL names sqlite " + other},
		{name: "env file", envFile: "DATABASE_URL=sqlite:///" + other + "\n", names: "DATABASE_URL in .env-local names sqlite " + other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			envPath := filepath.Join(dir, ".env-local")
			os.Remove(envPath)
			if c.envFile != "" {
				if err := os.WriteFile(envPath, []byte(c.envFile), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			env := djangoEnv(t)
			for k, v := range c.env {
				env[k] = v
			}
			out, errOut, code := runCLI(t, dir, env, "--python", testenv.Python, "sites")
			note := c.names + ", but the project's settings use sqlite var/site.sqlite3 (DATABASES['default'] in proj.settings.dev); reading that. Pass --db to override."
			if code != 0 || !strings.Contains(errOut, "siteplex: "+note+"\n") {
				t.Fatalf("exit %d, stderr:\n%s\nwant the line %q", code, errOut, note)
			}
			if !strings.Contains(out, "beta.example.com") || strings.Contains(out, "other.example") {
				t.Errorf("sites listed are not the settings' database's:\n%s", out)
			}
			if strings.Count(errOut, "reading that") != 1 {
				t.Errorf("the note is printed %d times:\n%s", strings.Count(errOut, "reading that"), errOut)
			}
			// --json: the same note on stderr, the settings' sites on stdout.
			out, errOut, code = runCLI(t, dir, env, "--python", testenv.Python, "sites", "--json")
			if code != 0 || !strings.Contains(errOut, note) || !strings.Contains(out, `"beta.example.com"`) {
				t.Errorf("--json: exit %d\n%s%s", code, out, errOut)
			}
			// doctor: the database check warns with the same words.
			env["DOCKER_HOST"] = deadDockerHost(t)
			r := runSiteplexCLI(t, env, "--project", dir, "--python", testenv.Python, "doctor", "--json")
			rep, status := parseDoctorJSON(t, r.out)
			if status["database"] != "warn" {
				t.Errorf("doctor database: %s, want warn\n%s", status["database"], r.out)
			}
			for _, ch := range rep.Checks {
				if ch.Name == "database" && (!strings.Contains(ch.Detail, note) || !strings.Contains(ch.Detail, "var/site.sqlite3")) {
					t.Errorf("doctor database detail %q", ch.Detail)
				}
			}
			delete(env, "DOCKER_HOST")
			// --db is an explicit override: no note.
			out, errOut, code = runCLI(t, dir, env, "--python", testenv.Python, "--db", "sqlite:///"+other, "sites")
			if code != 0 || strings.Contains(errOut, "reading that") || !strings.Contains(out, "other.example.net") {
				t.Errorf("--db: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
	// SITEPLEX_DATABASE_URL is explicit too.
	out, errOut, code := runCLI(t, dir, map[string]string{"SITEPLEX_DATABASE_URL": "sqlite:///" + other, "XDG_STATE_HOME": t.TempDir()}, "--python", testenv.Python, "sites")
	if code != 0 || strings.Contains(errOut, "reading that") || !strings.Contains(out, "other.example.net") {
		t.Errorf("SITEPLEX_DATABASE_URL: exit %d\n%s%s", code, out, errOut)
	}
}

// TestDatabaseURLReadBySettings: settings that read DATABASE_URL
// (django-environ's env.db()) get the env file's value through the
// introspection, so the URL and DATABASES['default'] agree: siteplex
// reads it without a note.
func TestDatabaseURLReadBySettings(t *testing.T) {
	testenv.NeedPython(t, "django", "environ")
	dir := testenv.DjangoFixture(t, "djpackage", true)
	other := otherProjectDB(t, dir)
	testenv.AppendFile(t, dir, filepath.Join("proj", "settings", "dev.py"),
		"\nimport environ\nDATABASES = {'default': environ.Env().db('DATABASE_URL', default='sqlite:///var/site.sqlite3')}\n")
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte("DATABASE_URL=sqlite:///"+other+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := djangoEnv(t)
	out, errOut, code := runCLI(t, dir, env, "--python", testenv.Python, "sites")
	if code != 0 || strings.Contains(errOut, "reading that") || !strings.Contains(errOut, "(from DATABASE_URL in .env-local)") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "other.example.net") {
		t.Errorf("not the env file's database:\n%s", out)
	}
	env["DOCKER_HOST"] = deadDockerHost(t)
	r := runSiteplexCLI(t, env, "--project", dir, "--python", testenv.Python, "doctor", "--json")
	if _, status := parseDoctorJSON(t, r.out); status["database"] != "ok" {
		t.Errorf("doctor database: %s, want ok\n%s", status["database"], r.out)
	}
}
