package devproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siteplex/siteplex/sites"
)

// Remote is an engine that runs in another process (`siteplex serve`),
// reached through its control API: it has the methods of *Engine the
// terminal UI uses, so a second terminal shows and drives the one engine
// of a project (docs/tui.md, "Attaching to a running engine"). Closing a
// Remote ends its event streams; the engine goes on.
//
// The methods without an error result (Status, Sites, Logs, Requests,
// Addrs) return what the engine answered last when it cannot be reached;
// the event stream then reports an EventError and ends.
type Remote struct {
	c *Client
	// timeout bounds each call that has no context of its own.
	timeout time.Duration

	mu      sync.Mutex // guards status, list and streams
	status  Status
	list    []sites.Site
	streams map[int]context.CancelFunc
	next    int
}

// NewRemote returns the engine ef describes, as a Remote.
func NewRemote(ef *EngineFile) *Remote {
	return &Remote{c: NewClient(ef), timeout: 10 * time.Second, streams: map[int]context.CancelFunc{},
		status: Status{PID: ef.PID, Listen: append([]string(nil), ef.Listen...), Sites: []SiteStatus{}}}
}

// PID is the engine's process id.
func (r *Remote) PID() int { return r.c.ef.PID }

// Start checks that the engine answers; the engine itself runs already.
func (r *Remote) Start(ctx context.Context) error {
	st, err := r.c.Status(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.status = st
	r.mu.Unlock()
	return nil
}

func (r *Remote) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.timeout)
}

// Addrs are the engine's listen addresses.
func (r *Remote) Addrs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.status.Listen...)
}

// Status asks the engine for its status.
func (r *Remote) Status() Status {
	ctx, cancel := r.ctx()
	defer cancel()
	st, err := r.c.Status(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.status = st
	}
	return r.status
}

// Sites asks the engine for its site list.
func (r *Remote) Sites() []sites.Site {
	ctx, cancel := r.ctx()
	defer cancel()
	var ws []wireSite
	err := r.c.do(ctx, http.MethodGet, "/api/sites", nil, &ws)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.list = make([]sites.Site, len(ws))
		for i, w := range ws {
			r.list[i] = w.Site
			r.list[i].CanonicalAlias = w.CanonicalAlias
		}
	}
	return append([]sites.Site(nil), r.list...)
}

// Logs asks the engine for the last n lines of a site's process (nil when
// it cannot be reached).
func (r *Remote) Logs(slug string, n int) []LogLine {
	ctx, cancel := r.ctx()
	defer cancel()
	var out []LogLine
	_ = r.c.do(ctx, http.MethodGet, "/api/sites/"+url.PathEscape(slug)+"/logs?n="+strconv.Itoa(n), nil, &out)
	return out
}

// Requests asks the engine for its last n request records.
func (r *Remote) Requests(n int) []RequestRecord {
	ctx, cancel := r.ctx()
	defer cancel()
	var out []RequestRecord
	_ = r.c.do(ctx, http.MethodGet, "/api/requests?n="+strconv.Itoa(n), nil, &out)
	return out
}

// StartSite, StopSite and RestartSite act on a site's process.
func (r *Remote) StartSite(ctx context.Context, slug string) error {
	return r.c.SiteAction(ctx, slug, "start")
}

func (r *Remote) StopSite(ctx context.Context, slug string) error {
	return r.c.SiteAction(ctx, slug, "stop")
}

func (r *Remote) RestartSite(ctx context.Context, slug string) error {
	return r.c.SiteAction(ctx, slug, "restart")
}

// Use switches the engine's forced site.
func (r *Remote) Use(ctx context.Context, siteID int64) error { return r.c.Use(ctx, siteID) }

// Reload makes the engine re-read the sites.
func (r *Remote) Reload(ctx context.Context) error { return r.c.Reload(ctx) }

// Subscribe streams the engine's events of the given kinds (all when none
// is given) from GET /api/events. When the stream breaks (the engine
// stopped), an EventError says so and the channel is closed; cancel (or
// Close) ends it too.
func (r *Remote) Subscribe(kinds ...EventKind) (<-chan Event, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan Event, 1024)
	r.mu.Lock()
	id := r.next
	r.next++
	r.streams[id] = cancel
	r.mu.Unlock()
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	s := &remoteStream{r: r, ctx: ctx, ch: ch, kinds: strings.Join(names, ",")}
	go s.run()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			cancel()
			r.mu.Lock()
			delete(r.streams, id)
			r.mu.Unlock()
		})
	}
}

// Close ends every event stream of r. The engine keeps running.
func (r *Remote) Close(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, cancel := range r.streams {
		cancel()
		delete(r.streams, id)
	}
	return nil
}

// remoteStream is one Subscribe: the goroutine that reads the event lines
// into ch.
type remoteStream struct {
	r     *Remote
	ctx   context.Context
	ch    chan Event
	kinds string
}

func (s *remoteStream) run() {
	defer close(s.ch)
	err := s.read()
	if s.ctx.Err() != nil {
		return
	}
	select {
	case s.ch <- Event{Kind: EventError, Err: fmt.Errorf("lost the siteplex engine (pid %d): %w", s.r.PID(), err)}:
	default:
	}
}

// read reads the stream until it ends; a subscriber that does not keep up
// loses events, as with the engine's own Subscribe.
func (s *remoteStream) read() error {
	path := "/api/events"
	if s.kinds != "" {
		path += "?kinds=" + url.QueryEscape(s.kinds)
	}
	resp, err := s.r.c.openStream(s.ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var we wireEvent
		if json.Unmarshal(sc.Bytes(), &we) != nil {
			continue
		}
		ev, ok := fromWire(we)
		if !ok {
			continue
		}
		select {
		case s.ch <- ev:
		default:
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("the event stream ended")
}
