// Package testenv starts the real services siteplex's integration tests
// need — a throw-away PostgreSQL cluster, a MariaDB server, a Docker
// engine — and decides what a missing service means: a loud skip locally,
// a failure when SITEPLEX_REQUIRE_ALL=1 (set by .ci/run).
package testenv

import (
	"os"
	"testing"
)

// Missing skips the test with a loud reason, or fails it when
// SITEPLEX_REQUIRE_ALL=1.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("SITEPLEX_REQUIRE_ALL") == "1" {
		t.Fatalf("SITEPLEX_REQUIRE_ALL=1 but a required service is missing: "+format, args...)
	}
	t.Skipf("SKIPPED (service missing): "+format, args...)
}
