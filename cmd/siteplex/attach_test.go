package main

import (
	"strings"
	"testing"

	"github.com/siteplex/siteplex/devproxy"
)

// TestAttachNotice: an attached UI names what runs the engine it shows,
// as engine.json records it: `siteplex serve`, another UI, or (a file
// without kind) just siteplex.
func TestAttachNotice(t *testing.T) {
	tests := []struct {
		kind             string
		flags            bool
		notice, attached string
		notInNotice      string
	}{
		{devproxy.KindServe, false, "attached to the engine of siteplex serve (pid 42); q leaves it running", "serve pid 42", ""},
		{devproxy.KindServe, true, "siteplex serve (pid 42) runs this project's engine: the engine flags given here do not apply", "serve pid 42", ""},
		{devproxy.KindUI, false, "attached to the engine of the siteplex UI (pid 42); q leaves it running (it stops when that UI quits)", "ui pid 42", "serve"},
		{devproxy.KindUI, true, "the siteplex UI (pid 42) runs this project's engine: the engine flags given here do not apply", "ui pid 42", "serve"},
		{"", false, "attached to the engine of siteplex (pid 42); q leaves it running", "pid 42", "serve"},
	}
	for _, tt := range tests {
		notice, attached := attachNotice(&devproxy.EngineFile{PID: 42, Kind: tt.kind}, tt.flags)
		if notice != tt.notice || attached != tt.attached {
			t.Errorf("kind %q flags %v: %q, %q; want %q, %q", tt.kind, tt.flags, notice, attached, tt.notice, tt.attached)
		}
		if tt.notInNotice != "" && strings.Contains(notice+attached, tt.notInNotice) {
			t.Errorf("kind %q: %q names %s", tt.kind, notice, tt.notInNotice)
		}
	}
}
