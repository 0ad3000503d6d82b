package sites_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

func stateEnv(t *testing.T) func(string) string {
	state := t.TempDir()
	return func(k string) string {
		if k == "XDG_STATE_HOME" {
			return state
		}
		return ""
	}
}

// mustResolve loads the project and resolves its database (no Docker).
func mustResolve(t *testing.T, opts sites.Options) sites.DB {
	t.Helper()
	p, err := sites.Load(opts)
	if err != nil {
		t.Fatal(err)
	}
	db, err := p.ResolveDB(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestDatabaseFromSettings: without a URL anywhere, the database is
// DATABASES['default'] of the settings the project runs with, a relative
// SQLite NAME taken from the project root.
func TestDatabaseFromSettings(t *testing.T) {
	tests := []struct {
		fixture, path, module string
		sites                 int
	}{
		{"djfixed", "dev.db", "mezzshape.settings", 3},
		{"djpackage", "var/site.sqlite3", "proj.settings.dev", 3},
		{"djsiteid", "sites.db", "siteidproj.settings", 3},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			dir := testenv.DjangoFixture(t, tt.fixture, true)
			// Run from a subfolder, as a user would.
			sub := filepath.Join(dir, "siteapp")
			opts := sites.Options{Cwd: sub, Python: testenv.Python, Getenv: stateEnv(t)}
			db := mustResolve(t, opts)
			if db.Driver != sites.SQLite || db.Path != filepath.Join(dir, tt.path) || db.Source != "DATABASES['default'] in "+tt.module {
				t.Errorf("db %+v", db)
			}
			list := mustLoad(t, opts)
			if len(list) != tt.sites {
				t.Errorf("%d sites", len(list))
			}
		})
	}
}

// TestDatabaseFromSettingsPostgres: a PostgreSQL database named only in
// settings (from the libpq variables in the env file).
func TestDatabaseFromSettingsPostgres(t *testing.T) {
	testenv.NeedPython(t, "django", "psycopg2")
	pg := testenv.StartPostgres(t)
	pg.CreateDB(t, "from_settings")
	dir := copyDjangoProject(t)
	env := []string{"PGDATABASE=from_settings", "PGHOST=" + pg.Host, "PGPORT=" + strconv.Itoa(pg.Port), "PGUSER=" + pg.User}
	testenv.Migrate(t, dir, env...)
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte(strings.Join(append(env, "SITE_ID=2"), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := sites.Options{Project: dir, Python: testenv.Python, Getenv: stateEnv(t)}
	db := mustResolve(t, opts)
	if db.Driver != sites.Postgres || db.Database != "from_settings" || db.Port != pg.Port || db.Source != "DATABASES['default'] in djangoproj.settings" {
		t.Errorf("db %+v", db)
	}
	compareSites(t, mustLoad(t, opts), djangoWant())
}

// TestDatabaseOrder: a DATABASE_URL that names another database than the
// settings gives way to DATABASES['default'], with a note; --db wins over
// the settings; database = "none" turns database reading off.
func TestDatabaseOrder(t *testing.T) {
	dir := testenv.DjangoFixture(t, "djfixed", false)
	other := filepath.Join(dir, "other.sqlite3")
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte("DATABASE_URL=sqlite:///other.sqlite3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := sites.Load(sites.Options{Project: dir, Python: testenv.Python, Getenv: stateEnv(t)})
	if err != nil {
		t.Fatal(err)
	}
	db, ok, err := p.DatabaseSource()
	if err != nil || !ok || db.Path != filepath.Join(dir, "dev.db") || db.Source != "DATABASES['default'] in mezzshape.settings" ||
		db.Note != "DATABASE_URL in .env-local names sqlite other.sqlite3, but the project's settings use sqlite dev.db (DATABASES['default'] in mezzshape.settings); reading that. Pass --db to override." {
		t.Errorf("db %+v %v %v", db, ok, err)
	}
	p, err = sites.Load(sites.Options{Project: dir, Python: testenv.Python, Getenv: stateEnv(t), DB: "sqlite:///other.sqlite3"})
	if err != nil {
		t.Fatal(err)
	}
	if db, ok, err = p.DatabaseSource(); err != nil || !ok || db.Path != other || db.Source != "--db" || db.Note != "" {
		t.Errorf("--db: %+v %v %v", db, ok, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte("database = \"none\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, ".env-local"))
	p, err = sites.Load(sites.Options{Project: dir, Python: testenv.Python, Getenv: stateEnv(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ResolveDB(context.Background(), nil); !errors.Is(err, sites.ErrDatabaseOff) || !errors.Is(err, sites.ErrNoDatabase) {
		t.Errorf("database = none: %v", err)
	}
}

// TestDeclaredSitesWithoutSiteTable: a database without django_site is
// fine when siteplex.toml declares the sites.
func TestDeclaredSitesWithoutSiteTable(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "tenant.sqlite3")
	writeSQLite(t, db, "CREATE TABLE other (id integer)")
	cfg := "[sites.shop]\nid = 1\ndomain = \"shop.example\"\n"
	if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	list := mustLoad(t, sites.Options{Project: dir, DB: "sqlite:///" + db})
	if len(list) != 1 || list[0].Slug != "shop" {
		t.Errorf("sites %+v", list)
	}
	os.Remove(filepath.Join(dir, "siteplex.toml"))
	if _, err := loadSites(t, sites.Options{Project: dir, DB: "sqlite:///" + db}); err == nil {
		t.Error("no site table and no declared sites: no error")
	}
}

func defaultFormat(t *testing.T) sites.DomainFormat {
	df, err := sites.ParseDomainFormat(sites.DefaultDomainFormat)
	if err != nil {
		t.Fatal(err)
	}
	return df
}

// writeSQLite creates a SQLite file holding ddl.
func writeSQLite(t *testing.T, path, ddl string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(ddl); err != nil {
		t.Fatal(err)
	}
}

func TestHostsName(t *testing.T) {
	for name, want := range map[string]bool{
		"localhost": false, "localhost:8000": false, "LOCALHOST.": false, "127.0.0.1": false, "127.0.0.1:8000": false,
		"[::1]:80": false, "10.1.2.3": false, "example.com": true, "gh.localhost": true, "shop.example:8000": true,
	} {
		if got := sites.HostsName(name); got != want {
			t.Errorf("HostsName(%q) = %v", name, got)
		}
	}
	list := []sites.Site{{ID: 1, Domain: "127.0.0.1:8000", Name: "Default"}, {ID: 2, Domain: "localhost", Name: "Local"}}
	sites.Finalize(list, defaultFormat(t), 0)
	for _, s := range list {
		if !s.Usable() || len(s.Problems) != 1 || len(s.HostsProblems) != 1 || s.LocalDomain == "" {
			t.Errorf("site %d: usable %v, problems %v", s.ID, s.Usable(), s.Problems)
		}
	}
}

func TestFindByName(t *testing.T) {
	list := []sites.Site{
		{ID: 1, Domain: "acme.example", Name: "ACME Shop"},
		{ID: 2, Domain: "shop.example", Name: "Shop", Aliases: []string{"boutique.example"}},
		{ID: 3, Domain: "a.example", Name: "Twin"},
		{ID: 4, Domain: "b.example", Name: "twin"},
	}
	sites.Finalize(list, defaultFormat(t), 0)
	if s, ok := sites.Find(list, "acme shop"); !ok || s.ID != 1 {
		t.Errorf("by name: %v %v", s, ok)
	}
	if _, ok := sites.Find(list, "TWIN"); ok {
		t.Error("an ambiguous name matched")
	}
	err := sites.UnknownSiteError(list, "twin")
	if !strings.Contains(err.Error(), "shared by 2 sites") {
		t.Errorf("ambiguous: %v", err)
	}
	err = sites.UnknownSiteError(list, "ACME Shpo")
	if !strings.Contains(err.Error(), "closest: 1 acme-example (ACME Shop, acme.example)") {
		t.Errorf("ranking: %v", err)
	}
	err = sites.UnknownSiteError(list, "boutiqe.example")
	if !strings.Contains(err.Error(), "closest: 2 shop-example") {
		t.Errorf("alias ranking: %v", err)
	}
}
