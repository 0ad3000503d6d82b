package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
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
	if _, err := db.Exec(sqlText); err != nil {
		t.Fatalf("exec in %s: %v\n%s", name, err, sqlText)
	}
}

var (
	pgOnce sync.Once
	pgInst *Postgres
	pgErr  error
)

// StartPostgres starts (once per test binary) a PostgreSQL cluster in a
// temp folder on a free port, as the postgres user when running as root.
// It is stopped by Cleanup in TestMain (see StopPostgres) or when the test
// binary's process group ends.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	pgOnce.Do(func() { pgInst, pgErr = startPostgres() })
	if pgErr != nil {
		Missing(t, "PostgreSQL: %v", pgErr)
	}
	return pgInst
}

// StopPostgres stops the cluster started by StartPostgres, if any. Call it
// from TestMain after m.Run.
func StopPostgres() {
	if pgInst == nil {
		return
	}
	pgCtl(pgInst.dir, "stop", "-m", "immediate")
	os.RemoveAll(pgInst.dir)
}

func pgBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql)", name)
}

// asPostgres wraps argv to run as the postgres user when we are root.
func asPostgres(argv []string) []string {
	if os.Geteuid() != 0 {
		return argv
	}
	return append([]string{"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"}, argv...)
}

func pgCtl(dir string, args ...string) error {
	bin, err := pgBin("pg_ctl")
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

func startPostgres() (*Postgres, error) {
	initdb, err := pgBin("initdb")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "siteplex-pg-")
	if err != nil {
		return nil, err
	}
	owner := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user to run the server: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		os.Chmod(dir, 0o755)
		owner = "postgres"
	}
	_ = owner
	argv := asPostgres([]string{initdb, "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"})
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
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
	for {
		db, err := sql.Open("pgx", p.URL("postgres"))
		if err == nil {
			err = db.PingContext(ctx)
			db.Close()
		}
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("PostgreSQL did not answer: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
