package tui

import (
	"testing"

	"github.com/siteplex/siteplex/devproxy"
)

// The Info pane's preload line says how the selected site's process
// started (docs/preload.md), and nothing without --preload.
func TestPreloadInfoLine(t *testing.T) {
	tests := []struct {
		name string
		pre  *devproxy.PreloadStatus
		ss   devproxy.SiteStatus
		want string
	}{
		{"not asked for", nil, devproxy.SiteStatus{Preloaded: true}, ""},
		{"forked", &devproxy.PreloadStatus{On: true, ParentPID: 4242}, devproxy.SiteStatus{Preloaded: true}, "forked from the warm parent (pid 4242)"},
		{"forked, parent replaced since", &devproxy.PreloadStatus{On: true}, devproxy.SiteStatus{Preloaded: true}, "forked from a warm parent"},
		{"plain with a reason", &devproxy.PreloadStatus{On: true, Reason: "threads running after the project loaded: 'x'"},
			devproxy.SiteStatus{PreloadReason: "threads running after the project loaded: 'x'"}, "started the plain way: threads running after the project loaded: 'x'"},
		{"refused", &devproxy.PreloadStatus{Reason: "--mode single runs one process for every site"}, devproxy.SiteStatus{}, "off: --mode single runs one process for every site"},
		{"stopped, parent warm", &devproxy.PreloadStatus{On: true, ParentPID: 7}, devproxy.SiteStatus{}, "on: the next start forks from pid 7"},
		{"stopped, no parent yet", &devproxy.PreloadStatus{On: true}, devproxy.SiteStatus{}, "on: the next start boots a warm parent"},
	}
	h := newHarness(t, 120, 40)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.m.preload = tt.pre
			if got := h.m.preloadInfo(tt.ss); got != tt.want {
				t.Errorf("preloadInfo = %q, want %q", got, tt.want)
			}
		})
	}
}
