package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestMain stops the throw-away PostgreSQL cluster after the package's
// tests. It is the only TestMain of package main: add nothing else here.
func TestMain(m *testing.M) { testenv.Main(m) }

// runCLI runs siteplex in process, as a user would in dir ("" = a fresh
// temp folder), and returns what it printed and its exit status. env is the
// whole process environment the command sees through Factory.Opts.Getenv
// (nil = empty), so the developer's DATABASE_URL never leaks in. Standard
// input is empty and stdout is not a terminal. The run is cancelled after
// two minutes.
func runCLI(t testing.TB, dir string, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	var out, errb bytes.Buffer
	f := newFactory(&IOStreams{In: strings.NewReader(""), Out: &out, Err: &errb})
	f.Opts.Cwd = dir
	f.Opts.Getenv = func(k string) string { return env[k] }
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = execute(ctx, f, args)
	return out.String(), errb.String(), code
}
