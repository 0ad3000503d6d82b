package testenv

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// NeedPrivilegedPort skips the test loudly unless port is below the
// machine's net.ipv4.ip_unprivileged_port_start, which it returns: the
// tests of what an unprivileged user sees when a port is refused.
func NeedPrivilegedPort(t testing.TB, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		Missing(t, "net.ipv4.ip_unprivileged_port_start: %v", err)
	}
	start, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || start <= port {
		Missing(t, "a system where port %d is privileged (net.ipv4.ip_unprivileged_port_start is %q)", port, strings.TrimSpace(string(b)))
	}
	return start
}
