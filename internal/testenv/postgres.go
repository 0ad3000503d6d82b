package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	_ "modernc.org/sqlite"             // database/sql driver "sqlite"
)

// Postgres is a running throw-away PostgreSQL cluster.
type Postgres struct {
	Host string
	Port int
	User string // superuser, no password (trust auth on loopback)
	dir  string
}

// URL returns a postgres:// URL for database name.
func (p *Postgres) URL(name string) string {
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", p.User, p.Host, p.Port, name)
}

// CreateDB creates a fresh database and returns its URL.
func (p *Postgres) CreateDB(t testing.TB, name string) string {
	t.Helper()
	db := p.Open(t, "postgres")
	defer db.Close()
	if _, err := db.Exec(`DROP DATABASE IF EXISTS "` + name + `"`); err != nil {
		t.Fatalf("drop database %s: %v", name, err)
	}
	if _, err := db.Exec(`CREATE DATABASE "` + name + `"`); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	return p.URL(name)
}

// Open connects to database name.
func (p *Postgres) Open(t testing.TB, name string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", p.URL(name))
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return db
}

// Exec runs statements (separated by ";\n" is fine) in database name.
func (p *Postgres) Exec(t testing.TB, name, sqlText string) {
	t.Helper()
	db := p.Open(t, name)
	defer db.Close()
	execIn(t, db, name, sqlText)
}

// PasswordGroup is a role whose members must authenticate with a password
// (scram-sha-256) on loopback; every other role is trusted.
const PasswordGroup = "siteplex_password_required"

const hbaConf = `# written by siteplex's testenv
local all all trust
host  all +` + PasswordGroup + ` 127.0.0.1/32 scram-sha-256
host  all +` + PasswordGroup + ` ::1/128      scram-sha-256
host  all all 127.0.0.1/32 trust
host  all all ::1/128      trust
`

// CreatePasswordRole creates a login role that must give password to
// connect (see PasswordGroup) and may connect to every database. It
// returns a URL for database db as that role.
func (p *Postgres) CreatePasswordRole(t testing.TB, role, password, db string) string {
	t.Helper()
	quoted := strings.ReplaceAll(password, "'", "''")
	p.Exec(t, "postgres", fmt.Sprintf(`DROP ROLE IF EXISTS "%s"; CREATE ROLE "%s" LOGIN PASSWORD '%s' IN ROLE %s`,
		role, role, quoted, PasswordGroup))
	u := url.URL{Scheme: "postgres", User: url.UserPassword(role, password),
		Host: net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// Main runs the tests of a package that uses StartPostgres, StartMariaDB or
// StartDocker and stops the servers and the engine afterwards. siteplex's
// backups of hosts and env files (XDG_STATE_HOME) go to a throw-away folder
// for the whole run, never the developer's own; and, unless the run sets
// SITEPLEX_CAROOT itself, the local CA is looked for in a folder that does
// not exist (in a temp folder every user may traverse, for the tests that
// run siteplex as uid 65534), so a developer's own CA never turns HTTPS on
// in a test. Use it as the package's
// TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	state, err := os.MkdirTemp("", "siteplex-test-state-")
	if err == nil {
		os.Setenv("XDG_STATE_HOME", state)
	}
	noCA := ""
	if os.Getenv("SITEPLEX_CAROOT") == "" {
		if noCA, err = os.MkdirTemp("", "siteplex-test-noca-"); err == nil {
			_ = os.Chmod(noCA, 0o755)
			os.Setenv("SITEPLEX_CAROOT", filepath.Join(noCA, "none"))
		}
	}
	code := m.Run()
	StopPostgres()
	StopMariaDB()
	StopDocker()
	if state != "" {
		os.RemoveAll(state)
	}
	if noCA != "" {
		os.RemoveAll(noCA)
	}
	os.Exit(code)
}

var postgres service[*Postgres]

// StartPostgres starts (once per test binary) a PostgreSQL cluster in a
// temp folder on a free port, as the postgres user when running as root.
// It is stopped by Cleanup in TestMain (see StopPostgres) or when the test
// binary's process group ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	return postgres.get(t, "PostgreSQL", startPostgres)
}

// StopPostgres stops the cluster started by StartPostgres, if any. Call it
// from TestMain after m.Run.
func StopPostgres() {
	if postgres.inst == nil {
		return
	}
	pgCtl(postgres.inst.dir, "stop", "-m", "immediate")
	os.RemoveAll(postgres.inst.dir)
}

// pgDirs are where Debian installs the PostgreSQL server's programs.
var pgDirs = []string{"/usr/lib/postgresql/*/bin"}

// asPostgres wraps argv to run as the postgres user when we are root.
func asPostgres(argv []string) []string {
	if os.Geteuid() != 0 {
		return argv
	}
	return append([]string{"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"}, argv...)
}

func pgCtl(dir string, args ...string) error {
	bin, err := findBin("postgresql", pgDirs, "pg_ctl")
	if err != nil {
		return err
	}
	argv := asPostgres(append([]string{bin, "-D", filepath.Join(dir, "data"), "-w"}, args...))
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// FreePort returns a TCP port free on 127.0.0.1 right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// MustFreePort is FreePort for a test: an error fails it.
func MustFreePort(t testing.TB) int {
	t.Helper()
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

func startPostgres() (*Postgres, error) {
	initdb, err := findBin("postgresql", pgDirs, "initdb")
	if err != nil {
		return nil, err
	}
	dir, _, _, err := serverDir("siteplex-pg-", "postgres")
	if err != nil {
		return nil, err
	}
	p, err := startCluster(initdb, dir)
	if err != nil {
		pgCtl(dir, "stop", "-m", "immediate")
		os.RemoveAll(dir)
		return nil, err
	}
	return p, nil
}

// startCluster creates a cluster in dir with initdb, starts it and
// returns it once it answers.
func startCluster(initdb, dir string) (*Postgres, error) {
	argv := asPostgres([]string{initdb, "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"})
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	// Trust everyone on loopback except members of PasswordGroup, who must
	// give a password (SCRAM): that lets tests check authentication errors.
	// The file is rewritten before the server first reads it.
	if err := os.WriteFile(filepath.Join(dir, "data", "pg_hba.conf"), []byte(hbaConf), 0o644); err != nil {
		return nil, fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c max_connections=200", port, dir)
	if err := pgCtl(dir, "start", "-l", filepath.Join(dir, "log"), "-o", opts); err != nil {
		return nil, err
	}
	p := &Postgres{Host: "127.0.0.1", Port: port, User: "postgres", dir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", p.URL("postgres"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if err := waitReady(ctx, db, nil); err != nil {
		return nil, fmt.Errorf("PostgreSQL %w", err)
	}
	if _, err = db.ExecContext(ctx, `CREATE ROLE `+PasswordGroup+` NOLOGIN`); err != nil {
		return nil, fmt.Errorf("creating role %s: %w", PasswordGroup, err)
	}
	return p, nil
}

// DjangoDDL is the exact Django 3.2 DDL of the three tables siteplex reads
// (django_site, multisite_alias, django_multisite_plus_site; see
// reference/django-multisite.md §1), per engine ("postgres", "sqlite",
// "mysql"), in that order. Each element may hold several statements.
var DjangoDDL = map[string][3]string{
	"postgres": {pgSiteDDL, pgAliasDDL, pgPlusDDL},
	"sqlite":   {sqliteSiteDDL, sqliteAliasDDL, sqlitePlusDDL},
	"mysql":    {mysqlSiteDDL, mysqlAliasDDL, mysqlPlusDDL},
}

const (
	pgSiteDDL = `CREATE TABLE "django_site" ("id" serial NOT NULL PRIMARY KEY,
  "domain" varchar(100) NOT NULL UNIQUE, "name" varchar(50) NOT NULL);
CREATE INDEX "django_site_domain_a2e37b91_like" ON "django_site" ("domain" varchar_pattern_ops);`
	pgAliasDDL = `CREATE TABLE "multisite_alias" ("id" serial NOT NULL PRIMARY KEY, "domain" varchar(100) NOT NULL UNIQUE,
  "site_id" integer NOT NULL, "is_canonical" boolean NULL, "redirect_to_canonical" boolean NOT NULL);
ALTER TABLE "multisite_alias" ADD CONSTRAINT "multisite_alias_is_canonical_site_id_6bc86489_uniq" UNIQUE ("is_canonical", "site_id");
ALTER TABLE "multisite_alias" ADD CONSTRAINT "multisite_alias_site_id_e73f0f15_fk_django_site_id"
  FOREIGN KEY ("site_id") REFERENCES "django_site" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "multisite_alias_domain_3746202e_like" ON "multisite_alias" ("domain" varchar_pattern_ops);
CREATE INDEX "multisite_alias_site_id_e73f0f15" ON "multisite_alias" ("site_id");`
	pgPlusDDL = `CREATE TABLE "django_multisite_plus_site" ("site_id" integer NOT NULL PRIMARY KEY,
  "real_domain" varchar(255) NOT NULL, "slug" varchar(255) NOT NULL UNIQUE, "is_enabled" boolean NOT NULL,
  "last_updated_at" timestamp with time zone NOT NULL, "extra_uwsgi_ini" text NOT NULL);
ALTER TABLE "django_multisite_plus_site" ADD CONSTRAINT "django_multisite_plus_site_site_id_8c00306f_fk_django_site_id"
  FOREIGN KEY ("site_id") REFERENCES "django_site" ("id") DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX "django_multisite_plus_site_slug_c0150bf5_like" ON "django_multisite_plus_site" ("slug" varchar_pattern_ops);`

	sqliteSiteDDL = `CREATE TABLE "django_site" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  "domain" varchar(100) NOT NULL UNIQUE, "name" varchar(50) NOT NULL);`
	sqliteAliasDDL = `CREATE TABLE "multisite_alias" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "domain" varchar(100) NOT NULL UNIQUE,
  "site_id" integer NOT NULL REFERENCES "django_site" ("id") DEFERRABLE INITIALLY DEFERRED,
  "is_canonical" bool NULL, "redirect_to_canonical" bool NOT NULL);
CREATE UNIQUE INDEX "multisite_alias_is_canonical_site_id_6bc86489_uniq" ON "multisite_alias" ("is_canonical", "site_id");
CREATE INDEX "multisite_alias_site_id_e73f0f15" ON "multisite_alias" ("site_id");`
	sqlitePlusDDL = `CREATE TABLE "django_multisite_plus_site" ("site_id" integer NOT NULL PRIMARY KEY
  REFERENCES "django_site" ("id") DEFERRABLE INITIALLY DEFERRED, "real_domain" varchar(255) NOT NULL,
  "slug" varchar(255) NOT NULL UNIQUE, "is_enabled" bool NOT NULL, "last_updated_at" datetime NOT NULL,
  "extra_uwsgi_ini" text NOT NULL);`
)

// DjangoDB creates database name with the three Django tables, runs stmts
// in it (INSERTs, say) and returns its URL.
func (p *Postgres) DjangoDB(t testing.TB, name string, stmts ...string) string {
	t.Helper()
	u := p.CreateDB(t, name)
	db := p.Open(t, name)
	defer db.Close()
	for _, q := range djangoStmts("postgres", stmts) {
		execIn(t, db, name, q)
	}
	return u
}

// djangoStmts is DjangoDDL[engine] followed by stmts.
func djangoStmts(engine string, stmts []string) []string {
	ddl := DjangoDDL[engine]
	return append(ddl[:], stmts...)
}

// DjangoSQLite creates a SQLite file at path with the three Django tables,
// runs stmts in it and returns its URL (sqlite:////abs/path).
func DjangoSQLite(t testing.TB, path string, stmts ...string) string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer db.Close()
	for _, q := range djangoStmts("sqlite", stmts) {
		execIn(t, db, path, q)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return "sqlite:///" + abs
}
