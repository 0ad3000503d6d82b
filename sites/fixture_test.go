package sites_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// pgSiteDDL is Django 3.2's django_site table on PostgreSQL (other tests
// in this package use it).
var pgSiteDDL = testenv.DjangoDDL["postgres"][0]

// fxSite is one django_site row, with its optional multisite-plus row.
type fxSite struct {
	ID           int64
	Domain, Name string
	Plus         *fxPlus
}

type fxPlus struct {
	Slug, RealDomain string
	Enabled          bool
}

// fxAlias is one multisite_alias row; Canonical false is stored as NULL,
// as django-multisite does (never FALSE).
type fxAlias struct {
	SiteID    int64
	Domain    string
	Canonical bool
}

// fixture is a database to build: which tables exist and their rows.
type fixture struct {
	NoSiteTable bool
	Alias, Plus bool
	Sites       []fxSite
	Aliases     []fxAlias
}

// engine builds fixtures in one database engine.
type engine struct {
	name string
	// create makes an empty database and returns its URL and a writable
	// handle to it.
	create func(t testing.TB) (url string, db *sql.DB)
	ddl    [3]string // site, alias, plus
	ph     func(i int) string
}

func pgEngine(t testing.TB) engine {
	pg := testenv.StartPostgres(t)
	return engine{
		name: "postgres",
		create: func(t testing.TB) (string, *sql.DB) {
			name := dbName(t)
			u := pg.CreateDB(t, name)
			db := pg.Open(t, name)
			t.Cleanup(func() { db.Close() })
			return u, db
		},
		ddl: testenv.DjangoDDL["postgres"],
		ph:  func(i int) string { return fmt.Sprintf("$%d", i) },
	}
}

func mysqlEngine(t testing.TB) engine {
	m := testenv.StartMariaDB(t)
	return engine{
		name: "mysql",
		create: func(t testing.TB) (string, *sql.DB) {
			name := dbName(t)
			u := m.CreateDB(t, name)
			db := m.Open(t, name)
			t.Cleanup(func() { db.Close() })
			return u, db
		},
		ddl: testenv.DjangoDDL["mysql"],
		ph:  func(int) string { return "?" },
	}
}

func sqliteEngine() engine {
	return engine{
		name: "sqlite",
		create: func(t testing.TB) (string, *sql.DB) {
			path := filepath.Join(t.TempDir(), "db.sqlite3")
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return "sqlite:///" + path, db
		},
		ddl: testenv.DjangoDDL["sqlite"],
		ph:  func(int) string { return "?" },
	}
}

// forEngine runs fn as a subtest per engine.
func forEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	t.Helper()
	for _, name := range []string{"postgres", "sqlite", "mysql"} {
		t.Run(name, func(t *testing.T) {
			var e engine
			switch name {
			case "postgres":
				e = pgEngine(t)
			case "mysql":
				e = mysqlEngine(t)
			default:
				e = sqliteEngine()
			}
			fn(t, e)
		})
	}
}

func dbName(t testing.TB) string {
	r := strings.NewReplacer("/", "_", " ", "_", "-", "_", "#", "_")
	n := strings.ToLower(r.Replace(t.Name()))
	if len(n) > 50 {
		n = n[len(n)-50:]
	}
	return "t_" + n
}

// build creates the database for fx and returns its URL.
func (e engine) build(t testing.TB, fx fixture) string {
	t.Helper()
	u, db := e.create(t)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v\n%s", e.name, err, q)
		}
	}
	if fx.NoSiteTable {
		exec(`CREATE TABLE auth_user (id integer NOT NULL PRIMARY KEY)`)
		return u
	}
	exec(e.ddl[0])
	if fx.Alias {
		exec(e.ddl[1])
	}
	if fx.Plus {
		exec(e.ddl[2])
	}
	p := e.ph
	for _, s := range fx.Sites {
		exec(fmt.Sprintf(`INSERT INTO django_site (id, domain, name) VALUES (%s, %s, %s)`, p(1), p(2), p(3)), s.ID, s.Domain, s.Name)
		if s.Plus != nil {
			exec(fmt.Sprintf(`INSERT INTO django_multisite_plus_site (site_id, real_domain, slug, is_enabled, last_updated_at, extra_uwsgi_ini)
VALUES (%s, %s, %s, %s, CURRENT_TIMESTAMP, '')`, p(1), p(2), p(3), p(4)), s.ID, s.Plus.RealDomain, s.Plus.Slug, s.Plus.Enabled)
		}
	}
	for _, a := range fx.Aliases {
		var canon any // NULL
		if a.Canonical {
			canon = true
		}
		exec(fmt.Sprintf(`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES (%s, %s, %s, %s)`,
			p(1), p(2), p(3), p(4)), a.Domain, a.SiteID, canon, true)
	}
	return u
}

// parse turns a fixture URL into a DB.
func parse(t testing.TB, u string) sites.DB {
	t.Helper()
	d, err := sites.ParseDatabaseURL(u, "/")
	if err != nil {
		t.Fatalf("ParseDatabaseURL(%q): %v", sites.RedactURL(u), err)
	}
	return d
}
