package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// service is a server a test binary starts at most once, on first use
// (PostgreSQL, MariaDB, Docker), and stops from Main.
type service[T any] struct {
	once sync.Once
	inst T // the zero value until started, or when starting failed
	err  error
}

// get starts the service on the first call and returns it; when it could
// not start, the test is skipped loudly (Missing), naming what.
func (s *service[T]) get(t testing.TB, what string, start func() (T, error)) T {
	t.Helper()
	s.once.Do(func() { s.inst, s.err = start() })
	if s.err != nil {
		Missing(t, "%s: %v", what, s.err)
	}
	return s.inst
}

// findBin returns the first of names found on PATH or in one of dirs
// (glob patterns: /usr/lib/postgresql/*/bin, the last match wins), or an
// error that names the Debian package to install.
func findBin(pkg string, dirs []string, names ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, d := range dirs {
			matches, _ := filepath.Glob(filepath.Join(d, n))
			for i := len(matches) - 1; i >= 0; i-- {
				if st, err := os.Stat(matches[i]); err == nil && !st.IsDir() {
					return matches[i], nil
				}
			}
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in %v (apt-get install %s)", names[0], dirs, pkg)
}

// serverDir makes a temp folder for a database server's files, readable by
// all. Running as root it belongs to account, the user the server must run
// as (PostgreSQL and MariaDB refuse root), and uid, gid are that account's;
// otherwise they are -1.
func serverDir(prefix, account string) (dir string, uid, gid int, err error) {
	uid, gid = -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup(account)
		if err != nil {
			return "", -1, -1, fmt.Errorf("running as root needs a %s user to run the server: %w", account, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	if dir, err = os.MkdirTemp("", prefix); err != nil {
		return "", -1, -1, err
	}
	if uid >= 0 {
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return "", -1, -1, err
		}
	}
	os.Chmod(dir, 0o755)
	return dir, uid, gid, nil
}

// errExited is waitReady's error when the server process ended.
var errExited = errors.New("exited")

// waitReady pings db every 100 ms until it answers. It gives up with
// errExited when exited (nil: not watched) closes, and with the last ping's
// error when ctx ends.
func waitReady(ctx context.Context, db *sql.DB, exited <-chan struct{}) error {
	for {
		err := db.PingContext(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("did not answer: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopProcess sends p SIGTERM, SIGKILL after grace, and returns once
// exited (closed when p was reaped) is closed.
func stopProcess(p *os.Process, exited <-chan struct{}, grace time.Duration) {
	p.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(grace):
		p.Kill()
		<-exited
	}
}

// execIn runs sqlText (one or more statements) in db; where names the
// database in the failure.
func execIn(t testing.TB, db *sql.DB, where, sqlText string) {
	t.Helper()
	if _, err := db.Exec(sqlText); err != nil {
		t.Fatalf("exec in %s: %v\n%s", where, err, sqlText)
	}
}

// lastLines is the end of a command's output, for error messages.
func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
