package main

import (
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// cliRun is one siteplex invocation's outcome.
type cliRun struct {
	out, err string
	code     int
}

// runSiteplexCLI runs the CLI in process through the package's runCLI
// harness (cli_test.go); env is the whole environment siteplex sees.
func runSiteplexCLI(t *testing.T, env map[string]string, args ...string) cliRun {
	t.Helper()
	out, errOut, code := runCLI(t, "", env, args...)
	return cliRun{out: out, err: errOut, code: code}
}

// domainsRows are sites as restored from live, for both engines: 1 gh and
// 2 de with multisite-plus rows (2 without a canonical alias), 3 without one.
const domainsRows = `DELETE FROM django_site;
INSERT INTO django_site (id, domain, name) VALUES (1, 'www.example.gh', 'Ghana'), (2, 'www.example.de', 'Germany'), (3, 'portal.example.com', 'Portal');
INSERT INTO django_multisite_plus_site VALUES (1, 'www.example.gh', 'gh', TRUE, '2024-01-02 03:04:05.123456', ''), (2, 'www.example.de', 'de', TRUE, '2024-01-02 03:04:05.123456', '');
INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES
  ('www.example.gh', 1, TRUE, TRUE), ('example.gh', 1, NULL, TRUE), ('example.de', 2, NULL, TRUE), ('portal.example.com', 3, TRUE, TRUE);`

// domainsProject copies sites/testdata/domainsproj to a temp dir, runs
// Django's migrate (db.sqlite3 in the project root, where siteplex looks
// by default) and adds the multisite tables and rows. It returns the root.
func domainsProject(t *testing.T) string {
	t.Helper()
	testenv.NeedPython(t, "django")
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("../../sites/testdata/domainsproj")); err != nil {
		t.Fatal(err)
	}
	testenv.Migrate(t, dir)
	db := openSQLite(t, filepath.Join(dir, "db.sqlite3"))
	ddl := testenv.DjangoDDL["sqlite"] // django_site comes from migrate
	for _, q := range []string{ddl[1], ddl[2], domainsRows} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%v\n%s", err, q)
		}
	}
	return dir
}

func openSQLite(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// dumpDomains returns every row a domain change may touch, as text.
func dumpDomains(t *testing.T, root string) string {
	t.Helper()
	db := openSQLite(t, filepath.Join(root, "db.sqlite3"))
	return dumpRows(t, db,
		`SELECT id || ' ' || domain FROM django_site ORDER BY id`,
		`SELECT site_id || ' ' || domain || ' ' || COALESCE(is_canonical, 'NULL') FROM multisite_alias ORDER BY site_id, domain`,
		`SELECT site_id || ' ' || slug || ' ' || real_domain || ' ' || last_updated_at FROM django_multisite_plus_site ORDER BY site_id`)
}

// dumpRows runs queries that each select one text column and returns
// their rows, one per line.
func dumpRows(t *testing.T, db *sql.DB, queries ...string) string {
	t.Helper()
	var b strings.Builder
	for _, q := range queries {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			b.WriteString(s + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return b.String()
}

func TestDomainsCLIRoundTrip(t *testing.T) {
	root := domainsProject(t)
	original := dumpDomains(t, root)

	dry := runSiteplexCLI(t, nil, "--project", root, "domains", "rewrite", "--dry-run")
	if dry.code != 0 {
		t.Fatalf("rewrite --dry-run: exit %d\n%s%s", dry.code, dry.out, dry.err)
	}
	for _, want := range []string{"rewrite (format {slug}.localhost), dry run", "www.example.gh → gh.localhost", "www.example.de → de.localhost",
		"left alone (domain and aliases untouched):", "portal.example.com  no django-multisite-plus row", "would change 2 sites; canonical aliases: 1 re-synced, 1 created", "Nothing was changed"} {
		if !strings.Contains(dry.out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, dry.out)
		}
	}
	if got := dumpDomains(t, root); got != original {
		t.Fatalf("--dry-run changed the database:\n%s\nwas\n%s", got, original)
	}

	rw := runSiteplexCLI(t, nil, "--project", root, "domains", "rewrite")
	if rw.code != 0 || !strings.Contains(rw.out, "changed 2 sites; canonical aliases: 1 re-synced, 1 created") || !strings.Contains(rw.out, "domains restore` undoes it exactly") {
		t.Fatalf("rewrite: exit %d\n%s%s", rw.code, rw.out, rw.err)
	}
	want := `1 www.example.gh
2 www.example.de
3 portal.example.com
1 example.gh NULL
1 www.example.gh 1
2 example.de NULL
3 portal.example.com 1
1 gh www.example.gh 2024-01-02 03:04:05.123456
2 de www.example.de 2024-01-02 03:04:05.123456
`
	rewritten := strings.NewReplacer("1 www.example.gh\n", "1 gh.localhost\n", "2 www.example.de\n", "2 de.localhost\n",
		"1 www.example.gh 1\n", "1 gh.localhost 1\n", "2 example.de NULL\n", "2 de.localhost 1\n2 example.de NULL\n").Replace(want)
	if got := dumpDomains(t, root); got != rewritten {
		t.Errorf("after rewrite:\n%s\nwant\n%s", got, rewritten)
	}

	st := runSiteplexCLI(t, nil, "--project", root, "domains", "status")
	if st.code != 0 || !strings.Contains(st.out, "a rewrite is in effect") || !strings.Contains(st.out, "puts back 4 rows") {
		t.Fatalf("status: exit %d\n%s%s", st.code, st.out, st.err)
	}
	rs := runSiteplexCLI(t, nil, "--project", root, "domains", "restore")
	if rs.code != 0 || !strings.Contains(rs.out, "gh.localhost → www.example.gh") || !strings.Contains(rs.out, "created by the rewrite, deleted") {
		t.Fatalf("restore: exit %d\n%s%s", rs.code, rs.out, rs.err)
	}
	// Exactly as before the rewrite: the alias the rewrite created is gone.
	if got := dumpDomains(t, root); got != original || original != want {
		t.Errorf("after restore:\n%s\nwant\n%s", got, original)
	}
	st = runSiteplexCLI(t, nil, "--project", root, "domains", "status")
	if st.code != 0 || !strings.Contains(st.out, "no rewrite in effect") {
		t.Fatalf("status after restore: exit %d\n%s%s", st.code, st.out, st.err)
	}
	// A second restore has nothing to undo: it refuses and explains.
	rs = runSiteplexCLI(t, nil, "--project", root, "domains", "restore")
	if rs.code != 1 || !strings.Contains(rs.err, "no rewrite of") || !strings.Contains(rs.err, "nothing was changed") {
		t.Fatalf("restore without a journal: exit %d\n%s%s", rs.code, rs.out, rs.err)
	}
}

func TestDomainsCLIFormatPrecedence(t *testing.T) {
	root := domainsProject(t)
	if err := os.WriteFile(filepath.Join(root, ".env-local"), []byte("DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT={}.env.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"env file", nil, "gh.env.test"},
		{"--domain-format", []string{"--domain-format", "{slug}.global.test"}, "gh.global.test"},
		{"--format wins", []string{"--domain-format", "{slug}.global.test", "domains", "rewrite", "--format", "{0}.flag.test"}, "gh.flag.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--project", root}, tt.args...)
			if !strings.Contains(strings.Join(tt.args, " "), "domains") {
				args = append(args, "domains", "rewrite")
			}
			r := runSiteplexCLI(t, nil, append(args, "--dry-run", "--json")...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.err)
			}
			var rep struct {
				Mode    string `json:"mode"`
				DryRun  bool   `json:"dry_run"`
				Changes []struct {
					ID       int64
					Old, New string
				} `json:"changes"`
				Skipped []struct {
					ID     int64
					Reason string
				} `json:"skipped"`
			}
			if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
				t.Fatalf("%v:\n%s", err, r.out)
			}
			if rep.Mode != "rewrite" || !rep.DryRun || len(rep.Changes) != 2 || rep.Changes[0].New != tt.want || len(rep.Skipped) != 1 || rep.Skipped[0].ID != 3 {
				t.Errorf("report %+v, want first new domain %q", rep, tt.want)
			}
		})
	}
}

func TestDomainsCLIClash(t *testing.T) {
	root := domainsProject(t)
	db := openSQLite(t, filepath.Join(root, "db.sqlite3"))
	if _, err := db.Exec(`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES ('de.localhost', 3, NULL, 1)`); err != nil {
		t.Fatal(err)
	}
	before := dumpDomains(t, root)
	r := runSiteplexCLI(t, nil, "--project", root, "domains", "rewrite")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.out, r.err)
	}
	for _, want := range []string{"domain clash", `"de.localhost"`, "site 2 (de, www.example.de)", "site 3 (portal.example.com)", "nothing was changed"} {
		if !strings.Contains(r.err, want) {
			t.Errorf("stderr lacks %q: %s", want, r.err)
		}
	}
	if after := dumpDomains(t, root); after != before {
		t.Errorf("rows changed:\n%s\nwas\n%s", after, before)
	}
}

func TestDomainsCLIUsage(t *testing.T) {
	root := domainsProject(t)
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"domains"}, 2, "needs a subcommand"},
		{[]string{"domains", "sideways"}, 2, "unknown command"},
		{[]string{"domains", "rewrite", "--format", "{nope}.test"}, 2, "unknown field {nope}"},
		{[]string{"domains", "restore", "--format", "x"}, 2, "unknown flag"},
		{[]string{"domains", "rewrite", "--format", "{}_x.test", "--dry-run"}, 1, `label "gh_x" contains '_'`},
		{[]string{"--db", "sqlite:///nowhere.sqlite3", "domains", "restore"}, 1, "does not exist"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runSiteplexCLI(t, nil, append([]string{"--project", root}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.err, tt.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", r.code, tt.code, r.err, tt.want)
			}
		})
	}
	t.Run("no multisite-plus table", func(t *testing.T) {
		dir := t.TempDir()
		db := openSQLite(t, filepath.Join(dir, "db.sqlite3"))
		if _, err := db.Exec(`CREATE TABLE django_site (id integer PRIMARY KEY, domain varchar(100) NOT NULL UNIQUE, name varchar(50) NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "manage.py"), nil, 0o644)
		r := runSiteplexCLI(t, nil, "--project", dir, "domains", "rewrite")
		if r.code != 1 || !strings.Contains(r.err, "no django_multisite_plus_site table") {
			t.Errorf("exit %d: %s", r.code, r.err)
		}
	})
}

// The same through the CLI on real PostgreSQL: rewrite, a clash, restore.
func TestDomainsCLIPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	u := pg.DjangoDB(t, "domains_cli", domainsRows)
	db := pg.Open(t, "domains_cli")
	defer db.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "manage.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	state := func() string {
		t.Helper()
		return dumpRows(t, db,
			`SELECT id || ' ' || domain FROM django_site ORDER BY id`,
			`SELECT site_id || ' ' || domain || ' ' || COALESCE(CAST(is_canonical AS TEXT), 'NULL') FROM multisite_alias ORDER BY site_id, domain`,
			`SELECT site_id || ' ' || CAST(last_updated_at AS TEXT) FROM django_multisite_plus_site ORDER BY site_id`)
	}
	original := state()

	r := runSiteplexCLI(t, nil, "--project", dir, "--db", u, "domains", "rewrite")
	if r.code != 0 || !strings.Contains(r.out, "www.example.gh → gh.localhost") {
		t.Fatalf("rewrite: exit %d\n%s%s", r.code, r.out, r.err)
	}
	rewritten := state()
	for _, want := range []string{"1 gh.localhost\n", "2 de.localhost\n", "3 portal.example.com\n", "1 gh.localhost true\n",
		"1 example.gh NULL\n", "2 de.localhost true\n", "2 example.de NULL\n", "1 2024-01-02 03:04:05.123456"} {
		if !strings.Contains(rewritten, want) {
			t.Errorf("after rewrite, no %q in\n%s", want, rewritten)
		}
	}

	// A live alias of site 3 takes gh.test: rewriting to {}.test clashes.
	if _, err := db.Exec(`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES ('gh.test', 3, NULL, TRUE)`); err != nil {
		t.Fatal(err)
	}
	before := state()
	r = runSiteplexCLI(t, nil, "--project", dir, "--db", u, "domains", "rewrite", "--format", "{}.test")
	if r.code != 1 || !strings.Contains(r.err, "site 1 (gh, gh.localhost)") || !strings.Contains(r.err, "site 3 (portal.example.com)") {
		t.Errorf("clash: exit %d, stderr %s", r.code, r.err)
	}
	if got := state(); got != before {
		t.Errorf("the failed rewrite changed rows:\n%s\nwas\n%s", got, before)
	}
	if _, err := db.Exec(`DELETE FROM multisite_alias WHERE domain = 'gh.test'`); err != nil {
		t.Fatal(err)
	}

	r = runSiteplexCLI(t, nil, "--project", dir, "--db", u, "domains", "restore")
	if r.code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// Exactly as before: the alias the rewrite created is gone.
	if got := state(); got != original {
		t.Errorf("after restore:\n%s\nwant\n%s", got, original)
	}
}

// TestDomainsCLIRealDjangoMySQL: a real Django 3.2 project migrated on
// MariaDB through mysqlclient (sites/testdata/djangoproj: django-multisite's
// and django-multisite-plus's tables built by Django's own schema editor),
// named by DATABASE_URL=mysql://… with a password, through the CLI: a
// clash changes nothing; rewrite, status, restore; a full dump
// (mariadb-dump, AUTO_INCREMENT included) is byte for byte what it was.
func TestDomainsCLIRealDjangoMySQL(t *testing.T) {
	const pw = "d0m@ins/p:w#"
	m, dir, u, env := mysqlDjangoProject(t, "cli_domains", "domains_app", pw)
	writeFile(t, filepath.Join(dir, ".env-local"), "DATABASE_URL="+u+"\n")
	db := m.Open(t, "cli_domains")
	defer db.Close()
	// A site the migration does not have: a multisite-plus row and no
	// alias, so that the rewrite creates one (and moves AUTO_INCREMENT).
	for _, q := range []string{
		`INSERT INTO django_site (id, domain, name) VALUES (5, 'www.example.it', 'Italy')`,
		`INSERT INTO django_multisite_plus_site (site_id, real_domain, slug, is_enabled, last_updated_at, extra_uwsgi_ini) VALUES (5, 'www.example.it', 'it', TRUE, '2024-01-02 03:04:05.123456', '')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	dump := func() string { t.Helper(); return testenv.FullDump(t, false, m.URL("cli_domains"), db) }
	run := func(args ...string) cliRun {
		t.Helper()
		out, errOut, code := runCLI(t, dir, nil, append([]string{"--project", dir}, args...)...)
		if strings.Contains(out+errOut, pw) || strings.Contains(out+errOut, "d0m%40ins") {
			t.Errorf("siteplex %s printed the password:\n%s%s", strings.Join(args, " "), out, errOut)
		}
		return cliRun{out: out, err: errOut, code: code}
	}

	// gh.test is taken by a live alias of site 1 (left alone): a clash
	// the database itself would not see on PostgreSQL, and nothing changes.
	if _, err := db.Exec(`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES ('GH.test', 1, NULL, TRUE)`); err != nil {
		t.Fatal(err)
	}
	before := dump()
	r := run("domains", "rewrite", "--format", "{}.test")
	if r.code != 1 || !strings.Contains(r.err, `domain clash: "gh.test" for site 2 (gh, example.gh) is already an alias (multisite_alias) of site 1 (example.com)`) {
		t.Errorf("clash: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if got := dump(); got != before {
		t.Fatalf("the failed rewrite changed the database:\n%s", testenv.DiffLines(before, got))
	}
	if _, err := db.Exec(`DELETE FROM multisite_alias WHERE domain = 'GH.test'`); err != nil {
		t.Fatal(err)
	}

	before = dump()
	r = run("domains", "rewrite", "--dry-run")
	if r.code != 0 || !strings.Contains(r.out, "would change 3 sites; canonical aliases: 2 re-synced, 1 created. Nothing was changed") {
		t.Fatalf("rewrite --dry-run: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if got := dump(); got != before {
		t.Fatalf("--dry-run changed the database:\n%s", testenv.DiffLines(before, got))
	}
	r = run("domains", "rewrite")
	for _, want := range []string{"example.gh → gh.localhost", "example.de → de.localhost", "www.example.it → it.localhost",
		"1  example.com       no django-multisite-plus row", "4  Example.ORG:8000  no django-multisite-plus row",
		"changed 3 sites; canonical aliases: 2 re-synced, 1 created.", "domains restore` undoes it exactly"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("rewrite output lacks %q:\n%s", want, r.out)
		}
	}
	if r.code != 0 {
		t.Fatalf("rewrite: exit %d\n%s%s", r.code, r.out, r.err)
	}
	// What Django itself now sees.
	out := testenv.Manage(t, dir, env, "shell", "-c",
		"from django.contrib.sites.models import Site; from tenants.models import Alias; "+
			"print(sorted(Site.objects.values_list('id', 'domain'))); "+
			"print(sorted(Alias.objects.filter(is_canonical=True).values_list('site_id', 'domain')))")
	if want := "[(1, 'example.com'), (2, 'gh.localhost'), (3, 'de.localhost'), (4, 'Example.ORG:8000'), (5, 'it.localhost')]\n" +
		"[(2, 'gh.localhost'), (3, 'de.localhost'), (5, 'it.localhost')]\n"; out != want {
		t.Errorf("Django sees after the rewrite:\n%s\nwant\n%s", out, want)
	}
	r = run("domains", "status")
	if r.code != 0 || !strings.Contains(r.out, "a rewrite is in effect in mysql") || !strings.Contains(r.out, "puts back 6 rows") {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = run("domains", "restore")
	if r.code != 0 || !strings.Contains(r.out, "gh.localhost → example.gh") || !strings.Contains(r.out, "it.localhost: created by the rewrite, deleted") ||
		!strings.Contains(r.out, "put back 6 rows.") || strings.Contains(r.out, "note:") {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if got := dump(); got != before {
		t.Fatalf("rewrite→restore is not byte-exact on a full dump:\n%s", testenv.DiffLines(before, got))
	}
	r = run("domains", "status")
	if r.code != 0 || !strings.Contains(r.out, "no rewrite in effect") {
		t.Fatalf("status after restore: exit %d\n%s%s", r.code, r.out, r.err)
	}
	r = run("domains", "restore")
	if r.code != 1 || !strings.Contains(r.err, "no rewrite of") || !strings.Contains(r.err, "nothing was changed") {
		t.Fatalf("restore without a journal: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// TestDomainsKilledBetweenJournalAndCommit: siteplex is killed (SIGKILL,
// through strace's fault injection) when the journal is on disk and the
// transaction has not committed, on SQLite, PostgreSQL and MariaDB.
// Nothing was changed; on SQLite the killed transaction left a hot
// journal, which read-only commands refuse to work around (never
// suggesting to delete it) and --rollback-journal rolls back; restore then
// finds nothing to undo, puts the alias id counter back (PostgreSQL's
// sequence and MySQL's AUTO_INCREMENT moved anyway) and removes the
// journal; a full dump is what it was.
func TestDomainsKilledBetweenJournalAndCommit(t *testing.T) {
	needStrace(t)
	bin := buildSiteplex(t)
	for _, tc := range []struct {
		engine, at string
	}{
		{"sqlite", "journal"}, {"postgres", "journal"}, {"mysql", "journal"},
		// Killed inside SQLite's commit, once its own journal is synced:
		// the hot journal case.
		{"sqlite", "commit"},
	} {
		engine := tc.engine
		name := engine + " killed between journal and commit"
		if tc.at == "commit" {
			name = engine + " killed inside the commit"
		}
		t.Run(name, func(t *testing.T) {
			var root, u string
			var db *sql.DB
			var args []string
			switch engine {
			case "sqlite":
				root = domainsProject(t)
				u = "sqlite:///" + filepath.Join(root, "db.sqlite3")
			case "mysql":
				m := testenv.StartMariaDB(t)
				u = m.DjangoDB(t, "domains_killed", domainsRows)
				db = m.Open(t, "domains_killed")
				defer db.Close()
			default:
				pg := testenv.StartPostgres(t)
				u = pg.DjangoDB(t, "domains_killed", domainsRows)
				db = pg.Open(t, "domains_killed")
				defer db.Close()
			}
			if engine != "sqlite" {
				root = t.TempDir()
				os.WriteFile(filepath.Join(root, "manage.py"), nil, 0o644)
				args = []string{"--db", u}
			}
			dump := func() string {
				if db == nil {
					db = openSQLite(t, filepath.Join(root, "db.sqlite3"))
				}
				return testenv.FullDump(t, engine == "postgres", u, db)
			}
			run := func(a ...string) cliRun {
				c := exec.Command(bin, append(append([]string{"--project", root}, args...), a...)...)
				var out, errb strings.Builder
				c.Stdout, c.Stderr = &out, &errb
				err := c.Run()
				code := 0
				if ee, ok := err.(*exec.ExitError); ok {
					code = ee.ExitCode()
				}
				return cliRun{out: out.String(), err: errb.String(), code: code}
			}
			var before string
			if engine != "sqlite" {
				before = dump()
			} else {
				// Copy the file: a read here must not touch the real one.
				before = sqliteDumpOfCopy(t, filepath.Join(root, "db.sqlite3"))
			}
			state := filepath.Join(root, ".siteplex")
			os.MkdirAll(state, 0o755)
			// The journal's last step is the fsync of .siteplex/: kill there;
			// or at SQLite's first write to the database file, in the commit.
			syscall, path := "fsync", state
			if tc.at == "commit" {
				syscall, path = "pwrite64", filepath.Join(root, "db.sqlite3")
			}
			c := exec.Command("strace", append(append([]string{"-f", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall, "-e", "inject=" + syscall + ":signal=SIGKILL", "-P", path,
				bin, "--project", root}, args...), "domains", "rewrite")...)
			out, err := c.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 && ee.ExitCode() != 137 {
				t.Fatalf("siteplex was not killed: %v\n%s", err, out)
			}
			if m, _ := filepath.Glob(filepath.Join(state, "domains-journal-*.json")); len(m) != 1 {
				t.Fatalf("no journal after the kill: %v", m)
			}
			if engine == "sqlite" {
				if _, hot := sites.HotJournal(sites.DB{Driver: sites.SQLite, Path: filepath.Join(root, "db.sqlite3")}); hot {
					r := run("sites")
					if r.code != 1 || !strings.Contains(r.err, "unfinished transaction") || !strings.Contains(r.err, "Do not delete") ||
						!strings.Contains(r.err, "--rollback-journal") {
						t.Fatalf("sites with a hot journal: exit %d\n%s", r.code, r.err)
					}
					if r := run("domains", "restore"); r.code != 1 || !strings.Contains(r.err, "domains restore --rollback-journal") {
						t.Fatalf("restore without consent: exit %d\n%s", r.code, r.err)
					}
					if r := run("domains", "status", "--rollback-journal"); r.code != 0 || !strings.Contains(r.err, "rolled back an unfinished transaction") {
						t.Fatalf("status --rollback-journal: exit %d\n%s%s", r.code, r.out, r.err)
					}
				} else if tc.at == "commit" {
					t.Fatal("a kill inside the commit left no hot journal")
				}
			}
			r := run("domains", "status")
			if r.code != 0 || !strings.Contains(r.out, "no rewrite in effect") {
				t.Fatalf("status after the kill: exit %d\n%s%s", r.code, r.out, r.err)
			}
			r = run("domains", "restore")
			if r.code != 0 || !strings.Contains(r.out, "nothing to undo") {
				t.Fatalf("restore after the kill: exit %d\n%s%s", r.code, r.out, r.err)
			}
			if m, _ := filepath.Glob(filepath.Join(state, "domains-journal-*.json")); len(m) != 0 {
				t.Fatalf("the journal is still there: %v", m)
			}
			if got := dump(); got != before {
				t.Fatalf("the database is not what it was:\n--- before\n%s\n--- after\n%s", before, got)
			}
		})
	}
}

// sqliteDumpOfCopy is testenv.FullDump of a copy of the SQLite file at
// path (the copy, not the file, is opened).
func sqliteDumpOfCopy(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(cp, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got := testenv.FullDump(t, false, "sqlite:///"+cp, openSQLite(t, cp))
	return strings.ReplaceAll(got, cp, path)
}
