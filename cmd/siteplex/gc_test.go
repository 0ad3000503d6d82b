package main

import (
	"context"
	"runtime/debug"
	"testing"

	"github.com/siteplex/siteplex/devproxy"
)

// TestNewEngineGCPace: a process that runs the engine collects at
// engineGCPercent, unless the user set GOGC, which wins.
func TestNewEngineGCPace(t *testing.T) {
	for _, tc := range []struct {
		gogc string
		want int
	}{
		{"", engineGCPercent},
		{"50", 77}, // GOGC set: the pace in force (77 here) is left alone
	} {
		t.Run("GOGC="+tc.gogc, func(t *testing.T) {
			t.Setenv("GOGC", tc.gogc)
			old := debug.SetGCPercent(77)
			defer debug.SetGCPercent(old)
			e, err := newEngine(devproxy.Config{})
			if err == nil {
				_ = e.Close(context.Background())
			}
			if got := debug.SetGCPercent(77); got != tc.want {
				t.Errorf("GC percent after newEngine = %d, want %d", got, tc.want)
			}
		})
	}
}
