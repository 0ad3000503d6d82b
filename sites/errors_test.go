package sites_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// checkMessage fails unless err's message is exactly want and holds no
// secret.
func checkMessage(t *testing.T, err error, want string, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want %q", want)
	}
	if err.Error() != want {
		t.Errorf("message\n got  %s\n want %s", err, want)
	}
	for _, s := range append(secrets, "goroutine ", "panic") {
		if strings.Contains(err.Error(), s) {
			t.Errorf("message contains %q: %s", s, err)
		}
	}
	if sites.IsUsage(err) {
		t.Errorf("a database failure is not a usage error (exit 1, not 2): %v", err)
	}
}

func TestPostgresErrors(t *testing.T) {
	pg := testenv.StartPostgres(t)
	dir := writeFiles(t, map[string]string{"manage.py": ""})
	hp := fmt.Sprintf("127.0.0.1:%d", pg.Port)

	t.Run("connection refused", func(t *testing.T) {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		_, err = loadSites(t, sites.Options{Project: dir, DB: fmt.Sprintf("postgres://app:hunter2@127.0.0.1:%d/app", port)})
		checkMessage(t, err, fmt.Sprintf("cannot connect to PostgreSQL at 127.0.0.1:%d (from --db): connection refused; is the server running? "+
			"Point siteplex elsewhere with --db URL or DATABASE_URL in the env file", port), "hunter2")
	})
	t.Run("authentication failed", func(t *testing.T) {
		pg.CreateDB(t, "authdb")
		good := pg.CreatePasswordRole(t, "siteplex_app", "right-horse-battery", "authdb")
		bad := strings.Replace(good, "right-horse-battery", "wrong-staple-9", 1)
		os.WriteFile(filepath.Join(dir, ".env-local"), []byte("DATABASE_URL="+bad+"\n"), 0o644)
		defer os.Remove(filepath.Join(dir, ".env-local"))
		_, err := loadSites(t, sites.Options{Project: dir})
		checkMessage(t, err, fmt.Sprintf(`PostgreSQL at %s refused user "siteplex_app": authentication failed; `+
			`check the user and password in the database URL (from DATABASE_URL in .env-local)`, hp), "wrong-staple-9", "right-horse-battery")

		// The right password gets through the same pg_hba rule, so the
		// failure above really was the password.
		_, err = loadSites(t, sites.Options{Project: dir, DB: good})
		checkMessage(t, err, fmt.Sprintf("no django_site table in postgres %s/authdb: run `manage.py migrate`", hp), "right-horse-battery")
	})
	t.Run("authentication failed, default sslmode", func(t *testing.T) {
		// Without ?sslmode= pgx tries TLS first, then plain text: the
		// message must still be about the password.
		pg.CreateDB(t, "authdb2")
		good := pg.CreatePasswordRole(t, "siteplex_app2", "right-horse-battery", "authdb2")
		bad := strings.Replace(strings.TrimSuffix(good, "?sslmode=disable"), "right-horse-battery", "wrong-staple-9", 1)
		_, err := loadSites(t, sites.Options{Project: dir, DB: bad})
		checkMessage(t, err, fmt.Sprintf(`PostgreSQL at %s refused user "siteplex_app2": authentication failed; `+
			`check the user and password in the database URL (from --db)`, hp), "wrong-staple-9", "right-horse-battery")
		_, err = loadSites(t, sites.Options{Project: dir, DB: strings.TrimSuffix(good, "?sslmode=disable")})
		checkMessage(t, err, fmt.Sprintf("no django_site table in postgres %s/authdb2: run `manage.py migrate`", hp))
	})
	t.Run("database missing", func(t *testing.T) {
		_, err := loadSites(t, sites.Options{Project: dir, DB: pg.URL("no_such_db")})
		checkMessage(t, err, fmt.Sprintf(`PostgreSQL at %s has no database "no_such_db": create it, or fix the name in the database URL (from --db)`, hp))
	})
	t.Run("no django_site table", func(t *testing.T) {
		u := pgEngine(t).build(t, fixture{NoSiteTable: true})
		_, err := loadSites(t, sites.Options{Project: dir, DB: u})
		checkMessage(t, err, fmt.Sprintf("no django_site table in postgres %s/%s: run `manage.py migrate`", hp, dbName(t)))
	})
	t.Run("host does not resolve", func(t *testing.T) {
		_, err := loadSites(t, sites.Options{Project: dir, DB: "postgres://u:hunter2@nonexistent.invalid:5432/app"})
		checkMessage(t, err, `cannot connect to PostgreSQL at nonexistent.invalid:5432 (from --db): host "nonexistent.invalid" does not resolve; point siteplex elsewhere with --db URL`, "hunter2")
	})
}

func TestSQLiteErrors(t *testing.T) {
	t.Run("file missing", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{".env": "DATABASE_URL=sqlite:///data/db.sqlite3\n"})
		_, err := loadSites(t, sites.Options{Project: dir})
		checkMessage(t, err, "SQLite database "+filepath.Join(dir, "data", "db.sqlite3")+" does not exist (from DATABASE_URL in .env): "+
			"run `manage.py migrate`, or point siteplex at another database with --db")
	})
	t.Run("not a database", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"db.sqlite3": "SECRET_KEY=abc\nthis is a text file, not SQLite\n" + strings.Repeat("x", 200)})
		_, err := loadSites(t, sites.Options{Project: dir})
		checkMessage(t, err, filepath.Join(dir, "db.sqlite3")+" is not a SQLite database: point siteplex at the right file with --db sqlite:////path/to/db.sqlite3")
	})
	t.Run("a folder", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"db/x": ""})
		_, err := loadSites(t, sites.Options{Project: dir, DB: "sqlite:///db"})
		checkMessage(t, err, "SQLite database "+filepath.Join(dir, "db")+" is a folder, not a file")
	})
	t.Run("no django_site table", func(t *testing.T) {
		u := sqliteEngine().build(t, fixture{NoSiteTable: true})
		_, err := loadSites(t, sites.Options{Project: t.TempDir(), DB: u})
		checkMessage(t, err, "no django_site table in sqlite "+strings.TrimPrefix(u, "sqlite:///")+": run `manage.py migrate`")
	})
	t.Run("empty file", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"db.sqlite3": ""})
		_, err := loadSites(t, sites.Options{Project: dir})
		checkMessage(t, err, "no django_site table in sqlite "+filepath.Join(dir, "db.sqlite3")+": run `manage.py migrate`")
	})
	t.Run("locked by a writer", func(t *testing.T) {
		u := sqliteEngine().build(t, fixture{Sites: []fxSite{{ID: 1, Domain: "a.example", Name: "A"}}})
		path := strings.TrimPrefix(u, "sqlite:///")
		w, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		ctx := context.Background()
		conn, err := w.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
			t.Fatal(err)
		}
		_, err = loadSites(t, sites.Options{Project: t.TempDir(), DB: u})
		checkMessage(t, err, "SQLite database "+path+" is locked by another process (a running migrate or shell?): try again when it finishes")
		if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
		if _, err := loadSites(t, sites.Options{Project: t.TempDir(), DB: u}); err != nil {
			t.Errorf("after the writer finished: %v", err)
		}
	})
	t.Run("opened read-only", func(t *testing.T) {
		u := sqliteEngine().build(t, fixture{Sites: []fxSite{{ID: 1, Domain: "a.example", Name: "A"}}})
		d := parse(t, u)
		st, err := sites.Open(context.Background(), d, false)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		_, err = st.SQL().Exec(`UPDATE django_site SET name = 'B'`)
		if err == nil || !strings.Contains(err.Error(), "readonly") {
			t.Errorf("writing through a read-only store: err = %v", err)
		}
	})
}

func TestMySQLErrors(t *testing.T) {
	m := testenv.StartMariaDB(t)
	dir := writeFiles(t, map[string]string{"manage.py": ""})
	hp := fmt.Sprintf("127.0.0.1:%d", m.Port)

	t.Run("connection refused", func(t *testing.T) {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		_, err = loadSites(t, sites.Options{Project: dir, DB: fmt.Sprintf("mysql://app:hunter2@127.0.0.1:%d/app", port)})
		checkMessage(t, err, fmt.Sprintf("cannot connect to MySQL at 127.0.0.1:%d (from --db): connection refused; is the server running? "+
			"Point siteplex elsewhere with --db URL or DATABASE_URL in the env file", port), "hunter2")
	})
	t.Run("authentication failed", func(t *testing.T) {
		m.CreateDB(t, "authdb")
		good := m.CreatePasswordUser(t, "siteplex_app", "right-horse-battery", "authdb")
		bad := strings.Replace(good, "right-horse-battery", "wrong-staple-9", 1)
		os.WriteFile(filepath.Join(dir, ".env-local"), []byte("DATABASE_URL="+bad+"\n"), 0o644)
		defer os.Remove(filepath.Join(dir, ".env-local"))
		_, err := loadSites(t, sites.Options{Project: dir})
		checkMessage(t, err, fmt.Sprintf(`MySQL at %s refused user "siteplex_app": authentication failed; `+
			`check the user and password in the database URL (from DATABASE_URL in .env-local)`, hp), "wrong-staple-9", "right-horse-battery")

		// The right password gets in: the failure above was the password.
		_, err = loadSites(t, sites.Options{Project: dir, DB: good})
		checkMessage(t, err, fmt.Sprintf("no django_site table in mysql %s/authdb: run `manage.py migrate`", hp), "right-horse-battery")
	})
	t.Run("password with special characters", func(t *testing.T) {
		const pw = `p@ss:w/o#rd?&%'"\ ü`
		u := mysqlEngine(t).build(t, fixture{Sites: []fxSite{{ID: 1, Domain: "a.example", Name: "A"}}})
		name := strings.TrimPrefix(u[strings.LastIndexByte(u, '/'):], "/")
		good := m.CreatePasswordUser(t, "siteplex_special", pw, name)
		got, err := loadSites(t, sites.Options{Project: dir, DB: good})
		if err != nil || len(got) != 1 || got[0].Domain != "a.example" {
			t.Fatalf("sites = %+v, %v", got, err)
		}
		// The same password in a URL with the userinfo ending at the last '@'.
		_, err = loadSites(t, sites.Options{Project: dir, DB: strings.Replace(good, "siteplex_special:", "siteplex_special:x", 1)})
		checkMessage(t, err, fmt.Sprintf(`MySQL at %s refused user "siteplex_special": authentication failed; `+
			`check the user and password in the database URL (from --db)`, hp), pw, url.QueryEscape(pw), url.PathEscape(pw))
	})
	t.Run("database missing", func(t *testing.T) {
		_, err := loadSites(t, sites.Options{Project: dir, DB: m.URL("no_such_db")})
		checkMessage(t, err, fmt.Sprintf(`MySQL at %s has no database "no_such_db": create it, or fix the name in the database URL (from --db)`, hp))
	})
	t.Run("no django_site table", func(t *testing.T) {
		u := mysqlEngine(t).build(t, fixture{NoSiteTable: true})
		_, err := loadSites(t, sites.Options{Project: dir, DB: u})
		checkMessage(t, err, fmt.Sprintf("no django_site table in mysql %s/%s: run `manage.py migrate`", hp, dbName(t)))
	})
	t.Run("host does not resolve", func(t *testing.T) {
		_, err := loadSites(t, sites.Options{Project: dir, DB: "mysql://u:hunter2@nonexistent.invalid/app"})
		checkMessage(t, err, `cannot connect to MySQL at nonexistent.invalid:3306 (from --db): host "nonexistent.invalid" does not resolve; point siteplex elsewhere with --db URL`, "hunter2")
	})
	t.Run("unix socket", func(t *testing.T) {
		u := mysqlEngine(t).build(t, fixture{Sites: []fxSite{{ID: 1, Domain: "a.example", Name: "A"}}})
		name := u[strings.LastIndexByte(u, '/')+1:]
		for _, raw := range []string{
			"mysql://root@" + url.PathEscape(m.Socket) + "/" + name,
			"mysql://root@localhost/" + name + "?unix_socket=" + url.QueryEscape(m.Socket),
		} {
			got, err := loadSites(t, sites.Options{Project: dir, DB: raw})
			if err != nil || len(got) != 1 {
				t.Errorf("%s: sites = %+v, %v", raw, got, err)
			}
		}
		missing := filepath.Join(t.TempDir(), "mysqld.sock")
		_, err := loadSites(t, sites.Options{Project: dir, DB: "mysql://u:hunter2@localhost/db?unix_socket=" + url.QueryEscape(missing)})
		checkMessage(t, err, "cannot connect to MySQL at "+missing+" (from --db): no socket there; is the server running? "+
			"Point siteplex elsewhere with --db URL or DATABASE_URL in the env file", "hunter2")
	})
}

// TestMySQLCaseInsensitiveCollation documents why some fixtures differ on
// MySQL: with the default collation, UNIQUE ignores case, so two
// multisite-plus slugs "za" and "ZA" (or domains "a.example" and
// "A.example") cannot both exist there, unlike on PostgreSQL and SQLite.
func TestMySQLCaseInsensitiveCollation(t *testing.T) {
	e := mysqlEngine(t)
	_, db := e.create(t)
	for _, q := range e.ddl {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(`INSERT INTO django_site (id, domain, name) VALUES (1, 'a.example', 'a')`); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec(`INSERT INTO django_site (id, domain, name) VALUES (2, 'A.Example', 'b')`)
	if err == nil || !strings.Contains(err.Error(), "Duplicate entry") {
		t.Fatalf("inserting A.Example next to a.example: err = %v, want a duplicate", err)
	}
}
