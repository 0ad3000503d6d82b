package supervisor

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/siteplex/siteplex/sites/django"
)

const (
	// logRingLines is how many lines each site's ring buffer keeps.
	logRingLines = 2000
	// maxLineBytes is where a line without a newline is cut: the rest
	// becomes the next line, so a huge line never stalls the reader.
	maxLineBytes = 64 << 10
	// logFileMax is the size at which .siteplex/logs/<slug>.log is rotated
	// to <slug>.log.1.
	logFileMax = 10 << 20
	// maxQueuedEvents bounds the events waiting for a slow emit; beyond it
	// log events are dropped (state and error events never are).
	maxQueuedEvents = 10000
)

// logMsg is what the fan-out goroutine receives: a line, or a barrier
// that is closed once every earlier line has been handled.
type logMsg struct {
	line    LogLine
	barrier chan struct{}
}

// logHub is the one fan-out of process output: it owns the per-site ring
// buffers, the per-site log files and hands every line to the event queue.
// Lines arrive through in; Logs reads the rings under mu.
type logHub struct {
	in   chan logMsg
	done chan struct{} // closed by close(): senders stop waiting
	exit chan struct{} // closed when run returns
	dir  string        // .siteplex/logs ("" = no files)
	q    *eventQueue

	mu    sync.Mutex // guards rings
	rings map[string]*ring

	// files is owned by the run goroutine.
	files map[string]*logFile

	closeOnce sync.Once
}

type logFile struct {
	f    *os.File
	size int64
}

func newLogHub(dir string, q *eventQueue) *logHub {
	h := &logHub{
		in:    make(chan logMsg, 1024),
		done:  make(chan struct{}),
		exit:  make(chan struct{}),
		dir:   dir,
		q:     q,
		rings: map[string]*ring{},
		files: map[string]*logFile{},
	}
	go h.run()
	return h
}

// add queues a line. It waits while the fan-out is busy (back-pressure on
// the child's pipe, never on subscribers) and drops the line once the hub
// is closed.
func (h *logHub) add(l LogLine) {
	select {
	case h.in <- logMsg{line: l}:
	case <-h.done:
	}
}

// system queues a line siteplex itself wrote into slug's stream.
func (h *logHub) system(slug, format string, args ...any) {
	h.add(LogLine{Time: time.Now(), Site: slug, Text: fmt.Sprintf(format, args...), System: true})
}

// sync returns once every line queued before the call is in the rings.
func (h *logHub) sync() {
	b := make(chan struct{})
	select {
	case h.in <- logMsg{barrier: b}:
	case <-h.done:
		return
	}
	select {
	case <-b:
	case <-h.exit:
	}
}

// run is the fan-out goroutine: ring, file, event queue, in that order.
func (h *logHub) run() {
	defer close(h.exit)
	for {
		select {
		case m := <-h.in:
			h.handle(m)
		case <-h.done:
			// Drain what is already queued, then stop.
			for {
				select {
				case m := <-h.in:
					h.handle(m)
				default:
					h.closeFiles()
					return
				}
			}
		}
	}
}

func (h *logHub) handle(m logMsg) {
	if m.barrier != nil {
		close(m.barrier)
		return
	}
	l := m.line
	h.mu.Lock()
	r := h.rings[l.Site]
	if r == nil {
		r = &ring{lines: make([]LogLine, 0, 64)}
		h.rings[l.Site] = r
	}
	r.push(l)
	h.mu.Unlock()
	h.writeFile(l)
	h.q.push(Event{Kind: EventLog, Log: l})
}

func (h *logHub) writeFile(l LogLine) {
	if h.dir == "" || l.Site == "" {
		return
	}
	lf := h.files[l.Site]
	if lf == nil {
		var err error
		if lf, err = h.openFile(l.Site); err != nil {
			h.q.push(Event{Kind: EventError, Err: err})
			// Remember the failure so it is reported once, not per line.
			h.files[l.Site] = &logFile{}
			return
		}
		h.files[l.Site] = lf
	}
	if lf.f == nil {
		return
	}
	var b bytes.Buffer
	b.WriteString(l.Time.Format("2006-01-02T15:04:05.000Z07:00"))
	switch {
	case l.System:
		b.WriteString(" siteplex: ")
	case l.Stderr:
		b.WriteString(" ! ")
	default:
		b.WriteString("   ")
	}
	b.WriteString(l.Text)
	b.WriteByte('\n')
	n, _ := lf.f.Write(b.Bytes())
	lf.size += int64(n)
	if lf.size > logFileMax {
		lf.f.Close()
		p := h.filePath(l.Site)
		_ = os.Rename(p, p+".1")
		delete(h.files, l.Site)
	}
}

func (h *logHub) filePath(slug string) string {
	return filepath.Join(h.dir, safeName(slug)+".log")
}

func (h *logHub) openFile(slug string) (*logFile, error) {
	// .siteplex gets its .gitignore when siteplex creates it.
	if err := django.MakeStateDir(filepath.Dir(h.dir)); err != nil {
		return nil, fmt.Errorf("log folder: %w", err)
	}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, fmt.Errorf("log folder: %w", err)
	}
	p := h.filePath(slug)
	if st, err := os.Stat(p); err == nil && st.Size() > logFileMax {
		_ = os.Rename(p, p+".1")
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	st, _ := f.Stat()
	var size int64
	if st != nil {
		size = st.Size()
	}
	return &logFile{f: f, size: size}, nil
}

func (h *logHub) closeFiles() {
	for k, lf := range h.files {
		if lf.f != nil {
			lf.f.Close()
		}
		delete(h.files, k)
	}
}

// close stops the fan-out after it handled what is queued. Later lines are
// dropped.
func (h *logHub) close() {
	h.closeOnce.Do(func() { close(h.done) })
	<-h.exit
}

// lines returns the last n lines of slug (n <= 0: all kept).
func (h *logHub) lines(slug string, n int) []LogLine {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rings[slug]
	if r == nil {
		return nil
	}
	return r.last(n)
}

// tail returns the texts of the last n lines of slug, for error pages.
func (h *logHub) tail(slug string, n int) []string {
	ls := h.lines(slug, n)
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Text
	}
	return out
}

// ring is a fixed-size ring of log lines.
type ring struct {
	lines []LogLine
	start int // index of the oldest line once full
}

func (r *ring) push(l LogLine) {
	if len(r.lines) < logRingLines {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.start] = l
	r.start = (r.start + 1) % logRingLines
}

func (r *ring) last(n int) []LogLine {
	size := len(r.lines)
	if n <= 0 || n > size {
		n = size
	}
	out := make([]LogLine, 0, n)
	for i := size - n; i < size; i++ {
		out = append(out, r.lines[(r.start+i)%size])
	}
	return out
}

// lineWriter turns a process's output stream into log lines: it splits on
// '\n', drops a trailing '\r', cuts lines at maxLineBytes and makes the
// text valid UTF-8. It is safe for one writer plus Flush from another
// goroutine.
type lineWriter struct {
	hub    *logHub
	slug   string
	stderr bool

	mu  sync.Mutex // guards buf
	buf []byte
}

var _ io.Writer = (*lineWriter)(nil)

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.buf = append(w.buf, p...)
			for len(w.buf) >= maxLineBytes {
				w.emit(w.buf[:maxLineBytes])
				w.buf = append(w.buf[:0], w.buf[maxLineBytes:]...)
			}
			break
		}
		if len(w.buf) > 0 {
			w.buf = append(w.buf, p[:i]...)
			for len(w.buf) > maxLineBytes {
				w.emit(w.buf[:maxLineBytes])
				w.buf = append(w.buf[:0], w.buf[maxLineBytes:]...)
			}
			w.emit(w.buf)
			w.buf = w.buf[:0]
		} else {
			line := p[:i]
			for len(line) > maxLineBytes {
				w.emit(line[:maxLineBytes])
				line = line[maxLineBytes:]
			}
			w.emit(line)
		}
		p = p[i+1:]
	}
	if cap(w.buf) > 4*maxLineBytes && len(w.buf) == 0 {
		w.buf = nil
	}
	return n, nil
}

// Flush emits a pending partial line (the process ended without a final
// newline).
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = w.buf[:0]
	}
}

func (w *lineWriter) emit(b []byte) {
	b = bytes.TrimSuffix(b, []byte{'\r'})
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	w.hub.add(LogLine{Time: time.Now(), Site: w.slug, Text: s, Stderr: w.stderr})
}

// eventQueue decouples emit from the goroutines that produce events: push
// never blocks; one goroutine calls emit in order. When more than
// maxQueuedEvents wait, new log events are dropped (counted), state and
// error events are kept.
type eventQueue struct {
	emit func(Event)

	mu      sync.Mutex // guards items, dropped, closed
	items   []Event
	dropped int
	closed  bool

	wake chan struct{} // capacity 1
	exit chan struct{}
}

func newEventQueue(emit func(Event)) *eventQueue {
	q := &eventQueue{emit: emit, wake: make(chan struct{}, 1), exit: make(chan struct{})}
	go q.run()
	return q
}

func (q *eventQueue) push(e Event) {
	if q.emit == nil {
		return
	}
	q.mu.Lock()
	if q.closed || (e.Kind == EventLog && len(q.items) >= maxQueuedEvents) {
		if !q.closed {
			q.dropped++
		}
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run is the delivery goroutine.
func (q *eventQueue) run() {
	defer close(q.exit)
	var batch []Event
	for {
		q.mu.Lock()
		batch, q.items = q.items, batch[:0]
		closed := q.closed
		q.mu.Unlock()
		for i := range batch {
			if q.emit != nil {
				q.emit(batch[i])
			}
			batch[i] = Event{}
		}
		if len(batch) > 0 {
			continue
		}
		if closed {
			return
		}
		<-q.wake
	}
}

// close delivers what is queued and stops the goroutine.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	<-q.exit
}

// safeName makes a slug safe as a file name.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 || strings.Trim(b.String(), ".") == "" {
		return "_"
	}
	return b.String()
}
