package compose

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestMain removes the images the tests built and stops the test engine.
func TestMain(m *testing.M) { testenv.Main(m) }

// dockerT starts (or finds) the test engine and connects to it.
func dockerT(t *testing.T) *Docker {
	t.Helper()
	testenv.StartDocker(t)
	d, err := Connect(context.Background())
	if err != nil {
		t.Fatalf("connecting to the test engine: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// mustJSON decodes b into v or fails.
func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
}
