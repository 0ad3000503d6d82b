package sites_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// copyDjangoProject copies testdata/djangoproj, without its database,
// into a temp folder.
func copyDjangoProject(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	testenv.CopyProject(t, filepath.Join("testdata", "djangoproj"), dst, ".sqlite3")
	return dst
}

// djangoWant is what testdata/djangoproj/tenants/migrations/0002_sites.py
// creates, with SITE_ID=2 forced.
func djangoWant() []sites.Site {
	return []sites.Site{
		{ID: 1, Name: "example.com", Domain: "example.com", Slug: "example-com", Enabled: true, LocalDomain: "example-com.localhost"},
		{ID: 2, Name: "Ghana", Domain: "example.gh", Slug: "gh", RealDomain: str("www.example.gh"), Enabled: true,
			Aliases: []string{"example.gh", "gh.example-stage.eu"}, LocalDomain: "gh.localhost", Forced: true},
		{ID: 3, Name: "Germany", Domain: "example.de", Slug: "de", RealDomain: str("www.example.de"), Enabled: false,
			Aliases: []string{"example.de"}, LocalDomain: "de.localhost"},
		{ID: 4, Name: "Port Site", Domain: "Example.ORG:8000", Slug: "example-org", Enabled: true, LocalDomain: "example-org.localhost"},
	}
}

func TestRealDjangoSQLite(t *testing.T) {
	testenv.NeedPython(t, "django")
	dir := copyDjangoProject(t)
	testenv.Migrate(t, dir)
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte("SITE_ID=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Found the way a user runs it: from a subfolder, db.sqlite3 by default.
	got := mustLoad(t, sites.Options{Cwd: filepath.Join(dir, "tenants")})
	compareSites(t, got, djangoWant())
}

func TestRealDjangoPostgres(t *testing.T) {
	testenv.NeedPython(t, "django", "psycopg2")
	pg := testenv.StartPostgres(t)
	u := pg.CreateDB(t, "djangoproj")
	dir := copyDjangoProject(t)
	testenv.Migrate(t, dir, "PGDATABASE=djangoproj", "PGHOST="+pg.Host, "PGPORT="+strconv.Itoa(pg.Port), "PGUSER="+pg.User)
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte("SITE_ID=2\nDATABASE_URL="+u+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := mustLoad(t, sites.Options{Project: dir})
	compareSites(t, got, djangoWant())
}

// TestRealDjangoMySQL migrates the project on MariaDB through mysqlclient
// (python3-mysqldb) and reads it back, named by a DATABASE_URL and by the
// settings.DATABASES entry introspection reports.
func TestRealDjangoMySQL(t *testing.T) {
	testenv.NeedPython(t, "django", "MySQLdb")
	m := testenv.StartMariaDB(t)
	u := m.CreateDB(t, "djangoproj")
	dir := copyDjangoProject(t)
	testenv.Migrate(t, dir, "MYSQL_DATABASE=djangoproj", "MYSQL_HOST="+m.Host, "MYSQL_TCP_PORT="+strconv.Itoa(m.Port), "MYSQL_USER="+m.User)
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte("SITE_ID=2\nDATABASE_URL="+u+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := mustLoad(t, sites.Options{Project: dir})
	compareSites(t, got, djangoWant())

	d, err := sites.DBFromDjango("django.db.backends.mysql", "djangoproj", m.Host, strconv.Itoa(m.Port), m.User, "",
		map[string]any{"charset": "utf8mb4"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err = loadDB(t, dir, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	compareSites(t, got, djangoWant())
}
