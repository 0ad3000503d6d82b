package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestRealDjangoMySQLCLI runs `siteplex sites` and `siteplex use` against a
// real Django 3.2 project migrated on MariaDB through mysqlclient
// (python3-mysqldb), the database named by DATABASE_URL=mysql://… with a
// password that needs escaping.
func TestRealDjangoMySQLCLI(t *testing.T) {
	const pw = "s3cr@t/p:w#"
	m, dir, u, _ := mysqlDjangoProject(t, "cli_django", "django_app", pw)
	writeFile(t, filepath.Join(dir, ".env-local"), "# local\nDATABASE_URL="+u+"\n")

	out, stderr, code := runCLI(t, dir, nil, "sites", "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("sites --json: exit %d: %s", code, stderr)
	}
	for _, want := range []string{`"domain": "example.gh"`, `"slug": "gh"`, `"gh.example-stage.eu"`, `"domain": "Example.ORG:8000"`, `"source": "django_site"`} {
		if !strings.Contains(out, want) {
			t.Errorf("sites --json lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out+stderr, pw) {
		t.Error("the password was printed")
	}

	out, stderr, code = runCLI(t, dir, nil, "use", "de")
	if code != 0 || out != "SITE_ID=3: 3 de (Germany, example.de), written to .env-local\n" {
		t.Fatalf("use de: exit %d\n%s%s", code, out, stderr)
	}
	env, _ := os.ReadFile(filepath.Join(dir, ".env-local"))
	if string(env) != "# local\nDATABASE_URL="+u+"\nSITE_ID=3\n" {
		t.Errorf(".env-local:\n%s", env)
	}
	out, _, code = runCLI(t, dir, nil, "use")
	if code != 0 || out != "★ 3 de (Germany, example.de)  (SITE_ID in .env-local)\n" {
		t.Errorf("use: exit %d: %q", code, out)
	}
	out, _, code = runCLI(t, dir, nil, "sites")
	if code != 0 || !strings.Contains(out, "★  3   de ") {
		t.Errorf("sites: exit %d:\n%s", code, out)
	}

	// A wrong password: the MySQL message, exit 1, no password.
	bad := strings.Replace(u, "s3cr%40t", "wrong", 1)
	if bad == u {
		t.Fatalf("URL %s: cannot make a wrong password", u)
	}
	_, stderr, code = runCLI(t, dir, nil, "sites", "--db", bad)
	want := "siteplex: MySQL at 127.0.0.1:" + strconv.Itoa(m.Port) + ` refused user "django_app": authentication failed; check the user and password in the database URL (from --db)` + "\n"
	if code != 1 || stderr != want {
		t.Errorf("wrong password: exit %d\n%s\nwant\n%s", code, stderr, want)
	}
}

// mysqlDjangoProject copies sites/testdata/djangoproj to a temp folder and
// migrates it with Django 3.2 and mysqlclient onto a fresh MariaDB
// database name, owned by user with password. It returns the server, the
// project folder, the database's mysql:// URL as that user, and the
// environment that points the project's settings at it (for manage.py).
func mysqlDjangoProject(t *testing.T, name, user, password string) (m *testenv.MariaDB, dir, url string, env []string) {
	t.Helper()
	testenv.NeedPython(t, "django", "MySQLdb")
	m = testenv.StartMariaDB(t)
	m.CreateDB(t, name)
	url = m.CreatePasswordUser(t, user, password, name)
	dir = t.TempDir()
	testenv.CopyProject(t, filepath.Join("..", "..", "sites", "testdata", "djangoproj"), dir, ".sqlite3")
	env = []string{"MYSQL_DATABASE=" + name, "MYSQL_HOST=" + m.Host, "MYSQL_TCP_PORT=" + strconv.Itoa(m.Port),
		"MYSQL_USER=" + user, "MYSQL_PWD=" + password}
	testenv.Migrate(t, dir, env...)
	return m, dir, url, env
}
