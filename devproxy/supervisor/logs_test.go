package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLineWriter(t *testing.T) {
	big := strings.Repeat("y", maxLineBytes*2+10)
	tests := []struct {
		name   string
		writes []string
		flush  bool
		want   []string
	}{
		{"lines", []string{"a\nb\n"}, false, []string{"a", "b"}},
		{"split across writes", []string{"he", "llo\nwor", "ld\n"}, false, []string{"hello", "world"}},
		{"crlf", []string{"dos\r\n"}, false, []string{"dos"}},
		{"empty lines kept", []string{"\n\n"}, false, []string{"", ""}},
		{"partial line waits for flush", []string{"no newline"}, false, nil},
		{"flush emits the partial line", []string{"no newline"}, true, []string{"no newline"}},
		{"long line in one write", []string{big + "\n"}, false, []string{big[:maxLineBytes], big[maxLineBytes : 2*maxLineBytes], big[2*maxLineBytes:]}},
		{"long line in small writes", svChunk(big+"\nnext\n", 1000), false, []string{big[:maxLineBytes], big[maxLineBytes : 2*maxLineBytes], big[2*maxLineBytes:], "next"}},
		{"invalid utf-8", []string{"bad \xff byte\n"}, false, []string{"bad \uFFFD byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newEventQueue(nil)
			h := newLogHub("", q)
			defer q.close()
			defer h.close()
			w := &lineWriter{hub: h, slug: "s", stderr: true}
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if err != nil || n != len(s) {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if tt.flush {
				w.Flush()
			}
			h.sync()
			var got []string
			for _, l := range h.lines("s", 0) {
				if !l.Stderr {
					t.Errorf("line %q not marked stderr", l.Text)
				}
				got = append(got, l.Text)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %d lines %.80q, want %d lines %.80q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func svChunk(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestLogHubRingFileAndEvents(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	var got []Event
	q := newEventQueue(func(e Event) { mu.Lock(); got = append(got, e); mu.Unlock() })
	h := newLogHub(dir, q)
	const n = logRingLines + 500
	for i := range n {
		h.add(LogLine{Time: time.Now(), Site: "alpha", Text: fmt.Sprintf("line %d", i)})
	}
	h.system("alpha", "exited with status %d", 1)
	h.sync()

	lines := h.lines("alpha", 0)
	if len(lines) != logRingLines {
		t.Fatalf("ring holds %d lines, want %d", len(lines), logRingLines)
	}
	if lines[0].Text != "line 501" || lines[len(lines)-1].Text != "exited with status 1" || !lines[len(lines)-1].System {
		t.Errorf("ring from %q to %+v", lines[0].Text, lines[len(lines)-1])
	}
	if last := h.tail("alpha", 2); !slices.Equal(last, []string{fmt.Sprintf("line %d", n-1), "exited with status 1"}) {
		t.Errorf("tail = %q", last)
	}
	if h.lines("nobody", 10) != nil {
		t.Error("lines of an unknown slug")
	}
	h.close()
	q.close()
	b, err := os.ReadFile(filepath.Join(dir, "alpha.log"))
	if err != nil {
		t.Fatal(err)
	}
	fileLines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(fileLines) != n+1 || !strings.HasSuffix(fileLines[0], "   line 0") || !strings.HasSuffix(fileLines[n], " siteplex: exited with status 1") {
		t.Errorf("log file: %d lines, first %q, last %q", len(fileLines), fileLines[0], fileLines[len(fileLines)-1])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n+1 || got[0].Kind != EventLog || got[n].Log.Text != "exited with status 1" {
		t.Errorf("%d events, want %d in order", len(got), n+1)
	}
}

// A subscriber that never returns must not stop the logs: lines still
// reach the ring, log events beyond the queue bound are dropped.
func TestLogHubNeverBlocksOnSlowEmit(t *testing.T) {
	block := make(chan struct{})
	q := newEventQueue(func(Event) { <-block })
	h := newLogHub("", q)
	done := make(chan struct{})
	go func() {
		for i := range maxQueuedEvents + 5000 {
			h.add(LogLine{Site: "s", Text: fmt.Sprint(i)})
		}
		h.sync()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a blocked subscriber blocked the log hub")
	}
	if got := len(h.lines("s", 0)); got != logRingLines {
		t.Errorf("ring holds %d lines", got)
	}
	q.mu.Lock()
	dropped := q.dropped
	q.mu.Unlock()
	// The batch in the blocked emit call left the queue before it filled.
	if dropped < 1000 {
		t.Errorf("dropped %d events, want thousands", dropped)
	}
	close(block)
	h.close()
	q.close()
}

func BenchmarkLineWriter(b *testing.B) {
	q := newEventQueue(func(Event) {})
	h := newLogHub("", q)
	defer q.close()
	defer h.close()
	w := &lineWriter{hub: h, slug: "s"}
	line := []byte(`[25/Nov/2026 19:42:13] "GET /whoami/ HTTP/1.1" 200 162` + "\n")
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = w.Write(line)
	}
	h.sync()
}
