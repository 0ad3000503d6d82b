package sites_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// djangoEngine builds fixtures in a real Django-made SQLite database: the
// tiny project in testdata/domainsproj is copied to a temp dir and migrated
// (django_site comes from Django's own migrations 0001 and 0002); the
// django-multisite tables are added with the DDL Django 3.2 generates.
func djangoEngine(t testing.TB) engine {
	testenv.NeedPython(t, "django")
	return engine{
		name: "sqlite-django",
		create: func(t testing.TB) (string, *sql.DB) {
			path := migrateDomainsProj(t)
			db, err := sql.Open("sqlite", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return "sqlite:///" + path, db
		},
		// django_site exists already, with Django's default example.com row.
		ddl: [3]string{"DELETE FROM django_site", testenv.DjangoDDL["sqlite"][1], testenv.DjangoDDL["sqlite"][2]},
		ph:  func(int) string { return "?" },
	}
}

// migrateDomainsProj copies testdata/domainsproj to a temp dir, runs
// `manage.py migrate` and returns the database's path.
func migrateDomainsProj(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/domainsproj")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "db.sqlite3")
	testenv.Migrate(t, dir, "DOMAINSPROJ_DB="+path)
	return path
}

// forDomainEngine runs fn on PostgreSQL, on a Django-made SQLite file and
// on MariaDB.
func forDomainEngine(t *testing.T, fn func(t *testing.T, e engine)) {
	t.Helper()
	for _, name := range []string{"postgres", "sqlite-django", "mysql"} {
		t.Run(name, func(t *testing.T) {
			var e engine
			switch name {
			case "postgres":
				e = pgEngine(t)
			case "mysql":
				e = mysqlEngine(t)
			default:
				e = djangoEngine(t)
			}
			fn(t, e)
		})
	}
}

// domainsFixture: a Divio-like database restored from live.
//
//	1 gh  live domain, canonical + two live aliases
//	2 de  live domain, no canonical alias yet
//	3     no multisite-plus row
//	4 us  already rewritten, canonical alias out of sync
//	5 xx  empty real_domain
func domainsFixture() fixture {
	plus := func(slug, real string) *fxPlus { return &fxPlus{Slug: slug, RealDomain: real, Enabled: true} }
	return fixture{Alias: true, Plus: true,
		Sites: []fxSite{
			{ID: 1, Domain: "www.example.gh", Name: "Ghana", Plus: plus("gh", "www.example.gh")},
			{ID: 2, Domain: "www.example.de", Name: "Germany", Plus: plus("de", "www.example.de")},
			{ID: 3, Domain: "portal.example.com", Name: "Portal"},
			{ID: 4, Domain: "us.localhost", Name: "USA", Plus: plus("us", "www.example.us")},
			{ID: 5, Domain: "xx-old.example", Name: "Nowhere", Plus: plus("xx", "")},
		},
		Aliases: []fxAlias{
			{SiteID: 1, Domain: "www.example.gh", Canonical: true},
			{SiteID: 1, Domain: "example.gh"},
			{SiteID: 1, Domain: "gh.example-stage.eu"},
			{SiteID: 2, Domain: "example.de"},
			{SiteID: 3, Domain: "portal.example.com", Canonical: true},
			{SiteID: 4, Domain: "www.example.us", Canonical: true},
		},
	}
}

// dbState is everything a domain change may touch, read straight from the
// tables.
type dbState struct {
	domains      map[int64]string
	canonical    map[int64]string
	nonCanonical []string // "site_id domain", sorted
	plusRows     []string // every column of django_multisite_plus_site, as text
}

func readState(t testing.TB, db *sql.DB) dbState {
	t.Helper()
	st := dbState{domains: map[int64]string{}, canonical: map[int64]string{}}
	query := func(q string, each func(rows *sql.Rows) error) {
		t.Helper()
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := each(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	query(`SELECT id, domain FROM django_site ORDER BY id`, func(r *sql.Rows) error {
		var id int64
		var d string
		err := r.Scan(&id, &d)
		st.domains[id] = d
		return err
	})
	query(`SELECT site_id, domain, is_canonical FROM multisite_alias ORDER BY site_id, domain`, func(r *sql.Rows) error {
		var id int64
		var d string
		var c sql.NullBool
		if err := r.Scan(&id, &d, &c); err != nil {
			return err
		}
		if c.Valid && c.Bool {
			st.canonical[id] = d
		} else {
			st.nonCanonical = append(st.nonCanonical, fmt.Sprintf("%d %s", id, d))
		}
		return nil
	})
	// Every column scanned into a string: the same text before and after
	// on each engine (MySQL has no CAST … AS TEXT).
	query(`SELECT site_id, slug, real_domain, is_enabled, last_updated_at, extra_uwsgi_ini
FROM django_multisite_plus_site ORDER BY site_id`, func(r *sql.Rows) error {
		var id, slug, real, en, lu, extra string
		err := r.Scan(&id, &slug, &real, &en, &lu, &extra)
		st.plusRows = append(st.plusRows, strings.Join([]string{id, slug, real, en, lu, extra}, "|"))
		return err
	})
	return st
}

func (s dbState) String() string {
	return fmt.Sprintf("domains=%v canonical=%v aliases=%v plus=%v", s.domains, s.canonical, s.nonCanonical, s.plusRows)
}

func openWritable(t testing.TB, u string) *sites.Store {
	t.Helper()
	st, err := sites.Open(context.Background(), parse(t, u), true)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustFormat(t testing.TB, f string) sites.DomainFormat {
	t.Helper()
	df, err := sites.ParseDomainFormat(f)
	if err != nil {
		t.Fatal(err)
	}
	return df
}

// journalIn is a fresh journal path for a rewrite.
func journalIn(t testing.TB) string {
	return filepath.Join(t.TempDir(), ".siteplex", "domains-journal.json")
}

func rewrite(t testing.TB, st *sites.Store, journal, format string) (*sites.DomainReport, error) {
	t.Helper()
	return st.RewriteDomains(context.Background(), sites.DomainOptions{Format: mustFormat(t, format), Journal: journal})
}

func restore(t testing.TB, st *sites.Store, journal string) (*sites.RestoreReport, error) {
	t.Helper()
	return st.RestoreDomains(context.Background(), sites.RestoreOptions{Journal: journal})
}

// issueFixture holds every case issue 15 found where rewrite then
// restore was not a round trip:
//
//	1 gh  domain example.gh, real_domain www.example.gh (came back as www.…)
//	2 de  no canonical alias (one is created, and must go again)
//	3     no multisite-plus row and no canonical alias: left alone, and
//	      must not get an alias
//	4 us  already rewritten, canonical alias out of sync
//	5 lg  empty real_domain (kept its rewritten domain)
//	6 fr  stage.example.fr:8000 (came back as real_domain www.example.fr)
//	7 it  a canonical alias that is not its domain (was replaced)
func issueFixture() fixture {
	plus := func(slug, real string) *fxPlus { return &fxPlus{Slug: slug, RealDomain: real, Enabled: true} }
	return fixture{Alias: true, Plus: true,
		Sites: []fxSite{
			{ID: 1, Domain: "example.gh", Name: "Ghana", Plus: plus("gh", "www.example.gh")},
			{ID: 2, Domain: "www.example.de", Name: "Germany", Plus: plus("de", "www.example.de")},
			{ID: 3, Domain: "portal.example.com", Name: "Portal"},
			{ID: 4, Domain: "us.localhost", Name: "USA", Plus: plus("us", "www.example.us")},
			{ID: 5, Domain: "legacy.example", Name: "Legacy", Plus: plus("lg", "")},
			{ID: 6, Domain: "stage.example.fr:8000", Name: "France", Plus: plus("fr", "www.example.fr")},
			{ID: 7, Domain: "www.example.it", Name: "Italy", Plus: plus("it", "www.example.it")},
		},
		Aliases: []fxAlias{
			{SiteID: 1, Domain: "example.gh", Canonical: true},
			{SiteID: 1, Domain: "gh.example-stage.eu"},
			{SiteID: 2, Domain: "example.de"},
			{SiteID: 4, Domain: "www.example.us", Canonical: true},
			{SiteID: 6, Domain: "stage.example.fr", Canonical: true},
			{SiteID: 7, Domain: "canon.example.it", Canonical: true},
		},
	}
}

// TestDomainsRoundTripFullDump: rewrite then restore gives back every
// byte of a full dump of the database — every table, every row, the id
// counters — on SQLite (a Django-made file), PostgreSQL and MariaDB
// (issue 15).
func TestDomainsRoundTripFullDump(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		u := e.build(t, issueFixture())
		st := openWritable(t, u)
		db := st.SQL()
		before := fullDump(t, e, u, db)
		journal := journalIn(t)

		rep, err := rewrite(t, st, journal, "{slug}.localhost")
		if err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		after := readState(t, db)
		want := map[int64]string{1: "gh.localhost", 2: "de.localhost", 3: "portal.example.com", 4: "us.localhost",
			5: "lg.localhost", 6: "fr.localhost", 7: "it.localhost"}
		for id, w := range want {
			if after.domains[id] != w {
				t.Errorf("after rewrite, site %d domain = %q, want %q", id, after.domains[id], w)
			}
			if id != 3 && after.canonical[id] != w {
				t.Errorf("after rewrite, site %d canonical alias = %q, want %q", id, after.canonical[id], w)
			}
		}
		// Left alone means left alone: no alias for site 3.
		if c, ok := after.canonical[3]; ok {
			t.Errorf("site 3 (left alone) got a canonical alias %q", c)
		}
		if len(rep.Skipped) != 1 || rep.Skipped[0].ID != 3 || rep.AliasesCreated != 2 || rep.AliasesUpdated != 4 {
			t.Errorf("report: skipped %+v, created %d, updated %d; want site 3, 2, 4", rep.Skipped, rep.AliasesCreated, rep.AliasesUpdated)
		}
		if fi, err := os.Stat(journal); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("journal: %v (want mode 0600)", err)
		}

		res, err := restore(t, st, journal)
		if err != nil {
			t.Fatalf("restore: %v", err)
		}
		if len(res.Changed) != 0 || res.Counter != "" {
			t.Errorf("restore report: changed %+v, counter %q", res.Changed, res.Counter)
		}
		if got := fullDump(t, e, u, db); got != before {
			t.Fatalf("rewrite→restore is not byte-exact on a full dump:\n%s", diffLines(before, got))
		}
		if _, err := os.Stat(journal); !os.IsNotExist(err) {
			t.Errorf("the journal is still there after a complete restore: %v", err)
		}
	})
}

// TestDomainsTwoRewrites: a second rewrite with another format, then one
// restore, gives back the database as before the first.
func TestDomainsTwoRewrites(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		u := e.build(t, issueFixture())
		st := openWritable(t, u)
		before := fullDump(t, e, u, st.SQL())
		journal := journalIn(t)
		for _, f := range []string{"{slug}.localhost", "{}.example.test", "{}.example.test"} {
			if _, err := rewrite(t, st, journal, f); err != nil {
				t.Fatalf("rewrite %s: %v", f, err)
			}
		}
		if _, err := restore(t, st, journal); err != nil {
			t.Fatal(err)
		}
		if got := fullDump(t, e, u, st.SQL()); got != before {
			t.Fatalf("two rewrites and a restore:\n%s", diffLines(before, got))
		}
	})
}

// rewrittenIssueFixture builds issueFixture in e and rewrites it to
// {slug}.localhost; it returns the store, the rows from before, the
// journal and the rewrite's report.
func rewrittenIssueFixture(t *testing.T, e engine) (*sites.Store, dbState, string, *sites.DomainReport) {
	t.Helper()
	st := openWritable(t, e.build(t, issueFixture()))
	orig := readState(t, st.SQL())
	journal := journalIn(t)
	rep, err := rewrite(t, st, journal, "{slug}.localhost")
	if err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	return st, orig, journal, rep
}

// TestDomainsRestoreAfterManualEdit: a row changed by hand after the
// rewrite is reported and kept; everything else is restored; the journal
// keeps the changed row.
func TestDomainsRestoreAfterManualEdit(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		st, orig, journal, _ := rewrittenIssueFixture(t, e)
		db := st.SQL()
		if _, err := db.Exec(`UPDATE django_site SET domain = 'my-own.example' WHERE id = 6`); err != nil {
			t.Fatal(err)
		}
		ds, err := st.DomainsStatus(context.Background(), journal)
		if err != nil || !ds.Active || len(ds.Changed) != 1 {
			t.Fatalf("status: %+v, %v", ds, err)
		}
		res, err := restore(t, st, journal)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changed) != 1 || res.Changed[0].ID != 6 || res.Changed[0].Now != "my-own.example" || res.Changed[0].Wrote != "fr.localhost" {
			t.Fatalf("changed since = %+v", res.Changed)
		}
		got := readState(t, db)
		for id, d := range orig.domains {
			want := d
			if id == 6 {
				want = "my-own.example"
			}
			if got.domains[id] != want {
				t.Errorf("site %d = %q, want %q", id, got.domains[id], want)
			}
		}
		// Its canonical alias was not changed by hand: it is restored.
		if got.canonical[6] != "stage.example.fr" {
			t.Errorf("site 6 canonical alias = %q", got.canonical[6])
		}
		ds, err = st.DomainsStatus(context.Background(), journal)
		if err != nil || ds.Active || ds.Rewrites != 1 || len(ds.Changed) != 1 {
			t.Fatalf("status after the restore: %+v, %v", ds, err)
		}
		// Putting the value back by hand lets a second restore finish.
		if _, err := db.Exec(`UPDATE django_site SET domain = 'fr.localhost' WHERE id = 6`); err != nil {
			t.Fatal(err)
		}
		if res, err := restore(t, st, journal); err != nil || len(res.Restored) != 1 || len(res.Changed) != 0 {
			t.Fatalf("second restore: %+v, %v", res, err)
		}
		if d := readState(t, db).domains[6]; d != "stage.example.fr:8000" {
			t.Fatalf("site 6 = %q", d)
		}
		if _, err := os.Stat(journal); !os.IsNotExist(err) {
			t.Error("the journal stays after everything was restored")
		}
	})
}

// TestDomainsRestoreCounterMoved: an alias added by hand after a rewrite
// that created aliases moves the id counter; restore still puts every row
// back and deletes the aliases the rewrite created, but leaves the counter
// as it is (saying so), so no id is handed out twice.
func TestDomainsRestoreCounterMoved(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		st, orig, journal, rep := rewrittenIssueFixture(t, e)
		db := st.SQL()
		if rep.AliasesCreated != 2 {
			t.Fatalf("rewrite created %d aliases, want 2", rep.AliasesCreated)
		}
		hand := addAlias(t, db, "by-hand.example")
		res, err := restore(t, st, journal)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(res.Counter, "moved since") {
			t.Errorf("counter note = %q, want it left as it is", res.Counter)
		}
		got := readState(t, db)
		want := orig // and the alias made by hand
		want.nonCanonical = append(slices.Clone(orig.nonCanonical), "3 by-hand.example")
		if got.String() != want.String() {
			t.Errorf("after restore:\n got %s\nwant %s", got, want)
		}
		next := addAlias(t, db, "next.example")
		if next <= hand {
			t.Errorf("the next alias got id %d, not above the hand-made one's %d", next, hand)
		}
	})
}

// addAlias adds a non-canonical alias of site 3, as a user would, and
// returns its id.
func addAlias(t *testing.T, db *sql.DB, domain string) int64 {
	t.Helper()
	if _, err := db.Exec(`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES ('` + domain + `', 3, NULL, TRUE)`); err != nil {
		t.Fatal(err)
	}
	var id int64
	if err := db.QueryRow(`SELECT id FROM multisite_alias WHERE domain = '` + domain + `'`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// TestDomainsRestoreWithoutJournal refuses, explains and changes nothing
// (issue 15: it overwrote every domain that differed from real_domain).
func TestDomainsRestoreWithoutJournal(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		st := openWritable(t, e.build(t, issueFixture()))
		before := readState(t, st.SQL())
		_, err := restore(t, st, journalIn(t))
		var nj *sites.NoJournalError
		if !errors.As(err, &nj) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Fatalf("err = %v, want a *NoJournalError", err)
		}
		if after := readState(t, st.SQL()); after.String() != before.String() {
			t.Fatal("rows changed")
		}
		ds, err := st.DomainsStatus(context.Background(), journalIn(t))
		if err != nil || ds.Active || ds.Rewrites != 0 {
			t.Fatalf("status without a journal: %+v, %v", ds, err)
		}
	})
}

// TestDomainsCanonicalAliasCase: a canonical alias that differs from the
// new domain only in letter case is re-synced to the new domain's exact
// spelling (MySQL's `=` would call them equal; siteplex compares in Go),
// and restore puts the old spelling back.
func TestDomainsCanonicalAliasCase(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		fx := fixture{Alias: true, Plus: true,
			Sites:   []fxSite{{ID: 1, Domain: "gh.localhost", Name: "Ghana", Plus: &fxPlus{Slug: "gh", RealDomain: "www.example.gh", Enabled: true}}},
			Aliases: []fxAlias{{SiteID: 1, Domain: "GH.Localhost", Canonical: true}, {SiteID: 1, Domain: "www.example.gh"}},
		}
		u := e.build(t, fx)
		st := openWritable(t, u)
		before := fullDump(t, e, u, st.SQL())
		journal := journalIn(t)
		rep, err := rewrite(t, st, journal, "{slug}.localhost")
		if err != nil {
			t.Fatal(err)
		}
		if rep.ChangedCount() != 0 || rep.AliasesUpdated != 1 {
			t.Errorf("report: %d sites changed, %d aliases re-synced; want 0, 1", rep.ChangedCount(), rep.AliasesUpdated)
		}
		if got := readState(t, st.SQL()).canonical[1]; got != "gh.localhost" {
			t.Errorf("canonical alias after rewrite = %q, want gh.localhost", got)
		}
		if _, err := restore(t, st, journal); err != nil {
			t.Fatal(err)
		}
		if got := fullDump(t, e, u, st.SQL()); got != before {
			t.Fatalf("rewrite→restore:\n%s", diffLines(before, got))
		}
	})
}

// Two sites swapping domains must not trip the UNIQUE constraints, which
// every engine checks row by row.
func TestChangeDomainsSwap(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		fx := fixture{Alias: true, Plus: true,
			Sites: []fxSite{
				{ID: 1, Domain: "b.example", Name: "A", Plus: &fxPlus{Slug: "a", RealDomain: "a.example", Enabled: true}},
				{ID: 2, Domain: "a.example", Name: "B", Plus: &fxPlus{Slug: "b", RealDomain: "b.example", Enabled: true}},
			},
			Aliases: []fxAlias{{SiteID: 1, Domain: "b.example", Canonical: true}, {SiteID: 2, Domain: "a.example", Canonical: true}},
		}
		st := openWritable(t, e.build(t, fx))
		if _, err := rewrite(t, st, journalIn(t), "{slug}.example"); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		got := readState(t, st.SQL())
		if got.domains[1] != "a.example" || got.domains[2] != "b.example" || got.canonical[1] != "a.example" || got.canonical[2] != "b.example" {
			t.Errorf("after swap: %s", got)
		}
	})
}

// A stale canonical alias of a site without a multisite-plus row holds the
// domain another site is given. That site is left alone, its alias too:
// the rewrite is refused, naming both.
func TestChangeDomainsStaleCanonicalAlias(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		fx := domainsFixture()
		fx.Aliases[4].Domain = "gh.localhost" // site 3's canonical alias
		st := openWritable(t, e.build(t, fx))
		before := readState(t, st.SQL())
		_, err := rewrite(t, st, journalIn(t), "{slug}.localhost")
		var ce *sites.DomainClashError
		if !errors.As(err, &ce) || ce.As != "canonical alias" || ce.Other.ID != 3 || ce.Site.ID != 1 {
			t.Fatalf("err = %v, want a clash with site 3's canonical alias", err)
		}
		if after := readState(t, st.SQL()); after.String() != before.String() {
			t.Errorf("rows changed")
		}
	})
}

func TestChangeDomainsClashRollsBack(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(fx *fixture)
		format string
		// want are substrings of the error; the two sites must be named.
		want []string
		// typed is false for a clash only the database sees.
		typed bool
		// trigger makes creating an alias fail with a UNIQUE violation.
		trigger bool
	}{
		{
			name:   "another site's domain",
			edit:   func(fx *fixture) { fx.Sites[2].Domain = "gh.localhost" },
			format: "{slug}.localhost", typed: true,
			want: []string{"gh.localhost", "site 1 (gh", "site 3 (gh.localhost)"},
		},
		{
			name:   "another site's alias",
			edit:   func(fx *fixture) { fx.Aliases = append(fx.Aliases, fxAlias{SiteID: 3, Domain: "de.localhost"}) },
			format: "{slug}.localhost", typed: true,
			want: []string{"de.localhost", "site 2 (de", "site 3 (portal.example.com)", "alias"},
		},
		{
			// Hosts ignore case, so does the check, on every engine (on
			// MySQL the UNIQUE index would too; not on the others).
			name:   "another site's alias, in other letter case",
			edit:   func(fx *fixture) { fx.Aliases = append(fx.Aliases, fxAlias{SiteID: 3, Domain: "DE.Localhost"}) },
			format: "{slug}.localhost", typed: true,
			want: []string{"de.localhost", "site 2 (de", "site 3 (portal.example.com)", "alias"},
		},
		{
			name:   "own non-canonical alias",
			edit:   func(fx *fixture) { fx.Aliases = append(fx.Aliases, fxAlias{SiteID: 1, Domain: "gh.localhost"}) },
			format: "{slug}.localhost", typed: true,
			want: []string{"gh.localhost", "site 1 (gh"},
		},
		{
			name:   "two sites get the same domain",
			format: "same.localhost", typed: true,
			want: []string{"same.localhost", "site 1 (gh", "site 2 (de"},
		},
		{
			name:   "another site's canonical alias (a site left alone)",
			edit:   func(fx *fixture) { fx.Aliases[4].Domain = "de.localhost" },
			format: "{slug}.localhost", typed: true,
			want: []string{"de.localhost", "site 2 (de", "site 3 (portal.example.com)", "canonical alias"},
		},
		{
			// A concurrent writer, stood in for by a trigger: only the
			// database's UNIQUE check sees it, after django_site was updated.
			name:    "clash found by the database",
			format:  "{slug}.localhost",
			want:    []string{"rolled back", "already in use"},
			trigger: true,
		},
	}
	forDomainEngine(t, func(t *testing.T, e engine) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				fx := domainsFixture()
				if tt.edit != nil {
					tt.edit(&fx)
				}
				st := openWritable(t, e.build(t, fx))
				if tt.trigger {
					addFailingTrigger(t, e, st.SQL())
				}
				before := readState(t, st.SQL())
				journal := journalIn(t)
				_, err := rewrite(t, st, journal, tt.format)
				if err == nil {
					t.Fatal("rewrite succeeded, want a clash")
				}
				if _, serr := os.Stat(journal); !os.IsNotExist(serr) {
					t.Errorf("a failed rewrite left a journal: %v", serr)
				}
				t.Logf("error: %v", err)
				var ce *sites.DomainClashError
				if errors.As(err, &ce) != tt.typed {
					t.Errorf("error %T (%v): DomainClashError = %v, want %v", err, err, !tt.typed, tt.typed)
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				if after := readState(t, st.SQL()); after.String() != before.String() {
					t.Errorf("rows changed although the rewrite failed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	})
}

func TestChangeDomainsDryRunWritesNothing(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		st := openWritable(t, e.build(t, domainsFixture()))
		before := readState(t, st.SQL())
		rep, err := st.RewriteDomains(context.Background(), sites.DomainOptions{Format: mustFormat(t, "{}.test"), DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.DryRun || rep.ChangedCount() != 4 || rep.Changes[0].New != "gh.test" {
			t.Errorf("dry-run rewrite report: %+v", rep)
		}
		if after := readState(t, st.SQL()); after.String() != before.String() {
			t.Errorf("a dry-run rewrite changed rows:\nbefore %s\nafter  %s", before, after)
		}
		// A dry-run restore after a real rewrite changes nothing either.
		journal := journalIn(t)
		if _, err := rewrite(t, st, journal, "{slug}.localhost"); err != nil {
			t.Fatal(err)
		}
		before = readState(t, st.SQL())
		res, err := st.RestoreDomains(context.Background(), sites.RestoreOptions{Journal: journal, DryRun: true})
		if err != nil || !res.DryRun || len(res.Restored) == 0 {
			t.Fatalf("dry-run restore: %+v, %v", res, err)
		}
		if after := readState(t, st.SQL()); after.String() != before.String() {
			t.Errorf("dry run changed rows:\nbefore %s\nafter  %s", before, after)
		}
	})
}

func TestChangeDomainsRefusesInvalid(t *testing.T) {
	tests := []struct {
		name, slug, format, want string
	}{
		{"underscore", "my_site", "{slug}.localhost", `label "my_site" contains '_'`},
		{"too long", strings.Repeat("a", 60), "{slug}.{slug}.localhost", "at most 100"},
		{"empty label", "gh", "{slug}..localhost", "empty label"},
	}
	forDomainEngine(t, func(t *testing.T, e engine) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				fx := domainsFixture()
				fx.Sites[0].Plus.Slug = tt.slug
				st := openWritable(t, e.build(t, fx))
				before := readState(t, st.SQL())
				_, err := rewrite(t, st, journalIn(t), tt.format)
				var ie *sites.InvalidDomainsError
				if !errors.As(err, &ie) {
					t.Fatalf("err = %v, want *InvalidDomainsError", err)
				}
				if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "site 1") || !strings.Contains(err.Error(), "nothing was changed") {
					t.Errorf("error %q: want %q, the site and 'nothing was changed'", err, tt.want)
				}
				if after := readState(t, st.SQL()); after.String() != before.String() {
					t.Errorf("rows changed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	})
}

func TestChangeDomainsTables(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		t.Run("no multisite-plus table", func(t *testing.T) {
			st := openWritable(t, e.build(t, fixture{Sites: []fxSite{{ID: 1, Domain: "example.com", Name: "x"}}}))
			_, err := rewrite(t, st, journalIn(t), "{slug}.localhost")
			var ne *sites.NoPlusTableError
			if !errors.As(err, &ne) {
				t.Fatalf("err = %v, want *NoPlusTableError", err)
			}
		})
		t.Run("no alias table", func(t *testing.T) {
			fx := domainsFixture()
			fx.Alias, fx.Aliases = false, nil
			st := openWritable(t, e.build(t, fx))
			journal := journalIn(t)
			rep, err := rewrite(t, st, journal, "{slug}.localhost")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := restore(t, st, journal); err != nil {
				t.Fatal(err)
			}
			if rep.AliasTable || rep.AliasesCreated != 0 || rep.ChangedCount() != 3 {
				t.Errorf("report %+v", rep)
			}
		})
	})
}

// BenchmarkChangeDomains measures one rewrite plus one restore (with the
// journal written, fsynced, read back and removed) of 1,000
// multisite-plus sites with canonical and live aliases (two transactions,
// every row changed each time).
func BenchmarkChangeDomains(b *testing.B) {
	const n = 1000
	fx := fixture{Alias: true, Plus: true}
	for i := int64(1); i <= n; i++ {
		live := fmt.Sprintf("www.site%d.example.com", i)
		fx.Sites = append(fx.Sites, fxSite{ID: i, Domain: live, Name: "s", Plus: &fxPlus{Slug: fmt.Sprintf("s%d", i), RealDomain: live, Enabled: true}})
		fx.Aliases = append(fx.Aliases, fxAlias{SiteID: i, Domain: live, Canonical: true}, fxAlias{SiteID: i, Domain: fmt.Sprintf("site%d.example.com", i)})
	}
	for _, name := range []string{"postgres", "sqlite", "mysql"} {
		b.Run(name, func(b *testing.B) {
			e := sqliteEngine()
			switch name {
			case "postgres":
				e = pgEngine(b)
			case "mysql":
				e = mysqlEngine(b)
			}
			st := openWritable(b, e.build(b, fx))
			ctx := context.Background()
			df := mustFormat(b, "{slug}.localhost")
			journal := journalIn(b)
			b.ResetTimer()
			for b.Loop() {
				if _, err := st.RewriteDomains(ctx, sites.DomainOptions{Format: df, Journal: journal}); err != nil {
					b.Fatal(err)
				}
				if _, err := st.RestoreDomains(ctx, sites.RestoreOptions{Journal: journal}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestDomainsLockBlocksWriters: the locks a rewrite or restore takes first
// let others read both tables, and make every other writer wait — here,
// told not to wait, fail — an UPDATE of django_site and an INSERT into
// multisite_alias alike; and taking them commits nothing (MySQL's LOCK
// TABLES would commit the transaction, and every statement after it).
func TestDomainsLockBlocksWriters(t *testing.T) {
	forDomainEngine(t, func(t *testing.T, e engine) {
		ctx := context.Background()
		u := e.build(t, domainsFixture())
		st := openWritable(t, u)
		before := readState(t, st.SQL())
		tx, err := sites.BeginDomainTx(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.Exec(`UPDATE django_site SET domain = 'in-the-transaction.example' WHERE id = 3`); err != nil {
			t.Fatal(err)
		}

		// tryWrite runs q as another session that may not wait for a lock.
		var tryWrite func(q string) error
		var read func(q string) error
		switch e.name {
		case "sqlite-django":
			other, err := sql.Open("sqlite", "file:"+strings.TrimPrefix(u, "sqlite:///")+"?_pragma=busy_timeout(0)")
			if err != nil {
				t.Fatal(err)
			}
			defer other.Close()
			tryWrite = func(q string) error { _, err := other.Exec(q); return err }
			read = func(q string) error { _, err := other.Exec(q); return err }
		default:
			conn, err := st.SQL().Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			read = func(q string) error { _, err := conn.ExecContext(ctx, q); return err }
			if e.name == "mysql" {
				if _, err := conn.ExecContext(ctx, `SET SESSION innodb_lock_wait_timeout = 0`); err != nil {
					t.Fatal(err)
				}
				tryWrite = read
				break
			}
			// PostgreSQL: the lock every UPDATE and INSERT takes, NOWAIT.
			tryWrite = func(q string) error {
				otx, err := conn.BeginTx(ctx, nil)
				if err != nil {
					return err
				}
				defer otx.Rollback()
				table := "django_site"
				if strings.Contains(q, "multisite_alias") {
					table = "multisite_alias"
				}
				if _, err := otx.Exec(`LOCK TABLE ` + table + ` IN ROW EXCLUSIVE MODE NOWAIT`); err != nil {
					return err
				}
				_, err = otx.Exec(q)
				return err
			}
		}
		for _, q := range []string{`SELECT COUNT(*) FROM django_site`, `SELECT COUNT(*) FROM multisite_alias`} {
			if err := read(q); err != nil {
				t.Errorf("another session cannot read while the locks are held: %s: %v", q, err)
			}
		}
		for _, q := range []string{
			`UPDATE django_site SET name = 'other writer' WHERE id = 1`,
			`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES ('other-writer.example', 3, NULL, TRUE)`,
			`DELETE FROM multisite_alias WHERE site_id = 2`,
		} {
			err := tryWrite(q)
			if err == nil {
				t.Errorf("another session wrote while the locks were held: %s", q)
			} else {
				t.Logf("%s: %v", q, err)
			}
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if after := readState(t, st.SQL()); after.String() != before.String() {
			t.Errorf("a rolled-back transaction left changes (something committed it):\nbefore %s\nafter  %s", before, after)
		}
	})
}
