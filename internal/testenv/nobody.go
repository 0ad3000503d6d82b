package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// AsNobody returns a command that runs name with args as uid/gid 65534
// (through setpriv, with no supplementary groups), for tests of what an
// unprivileged user sees. It needs root and setpriv; without either the
// test is skipped loudly (or fails under SITEPLEX_REQUIRE_ALL=1). The
// command's environment is the caller's to set.
func AsNobody(ctx context.Context, t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root, to run %s as uid 65534 with setpriv", name)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		Missing(t, "setpriv (util-linux): %v", err)
	}
	argv := append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--", name}, args...)
	return exec.CommandContext(ctx, setpriv, argv...)
}
