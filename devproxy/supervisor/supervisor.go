package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/sites/django"
)

const (
	// reloadDrain bounds how long a replaced process may finish the
	// requests it is serving before it gets SIGTERM.
	reloadDrain = 5 * time.Second
	// backoffAfter is how many deaths before ready in a row start backoff.
	backoffAfter = 3
	backoffMax   = 30 * time.Second
	// TailLines is how many output lines errors carry for the 502 page.
	TailLines = 50
)

// SingleSlug names the one process of single mode: its log lines carry
// Site == SingleSlug, its log file is .siteplex/logs/single.log, and
// Logs(anySlug, n) returns its lines.
const SingleSlug = "single"

// ErrClosed is returned by Acquire and friends after Close.
var ErrClosed = errors.New("siteplex is shutting down")

// BootError says a site's process ended or timed out before it accepted
// connections. Tail is the last TailLines lines of its output.
type BootError struct {
	Slug string
	Tail []string
	Err  error
}

func (e *BootError) Error() string {
	return fmt.Sprintf("site %s did not start: %v", e.Slug, e.Err)
}

func (e *BootError) Unwrap() error { return e.Err }

// BackoffError says a site's process keeps dying before it is ready, and
// siteplex waits until Until before it starts it again (a code change,
// Start or Restart retry at once). Tail is the last TailLines output lines
// (typically the traceback); LastExit the last exit status (-1: none).
type BackoffError struct {
	Slug     string
	Until    time.Time
	Tail     []string
	LastExit int
}

func (e *BackoffError) Error() string {
	return fmt.Sprintf("site %s keeps crashing (last exit status %d): next try in %s, or after a code change",
		e.Slug, e.LastExit, time.Until(e.Until).Round(100*time.Millisecond))
}

// Supervisor starts, reloads, restarts and stops the site processes
// (docs/supervisor.md). Methods are safe for concurrent use.
type Supervisor struct {
	cfg      Config
	root     string
	stateDir string // "" without a project: no pid or log files
	runner   Runner
	q        *eventQueue
	logs     *logHub
	// ctx lives until Close; processes start under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // instance goroutines

	// snap is a copy of units for Acquire's fast path, replaced on change.
	snap atomic.Pointer[map[string]*unit]
	// useSeq counts request starts and ends over all units (see unit.lastUse).
	useSeq atomic.Int64

	mu       sync.Mutex // guards the fields below and every non-atomic unit and instance field
	list     []sites.Site
	forcedID int64
	units    map[string]*unit
	ports    map[int]bool // ports of live instances
	closed   bool

	// preload is the preload runner (also s.runner) when Config.Preload
	// applies; nil otherwise. preloadOff says why it does not apply.
	preload    *preloadRunner
	preloadOff string
}

// unit is what one process slot is: a site in per-site mode, everything in
// single mode.
type unit struct {
	key          string
	site         sites.Site // per-site: the site; single: the forced site
	state        State
	cur          *instance // non-nil exactly when Starting or Running
	starts       int
	lastExit     *int
	failStreak   int // deaths before ready in a row
	backoffUntil time.Time
	// lastUse orders units by their last request start or end (a value of
	// the supervisor's use counter: no clock read on the hot path, which
	// costs ~300 ns on VMs without a vDSO clock). The reaper turns changes
	// of it into activeAt, at its tick's precision.
	lastUse  atomic.Int64
	useSeq   *atomic.Int64
	seenUse  int64     // lastUse at the reaper's last look
	activeAt time.Time // when the reaper (or a start) last saw activity
	// running is cur while the state is Running, else nil: Acquire's
	// lock-free fast path reads it.
	running atomic.Pointer[instance]
}

func (u *unit) touch() { u.lastUse.Store(u.useSeq.Add(1)) }

// idleForLocked says how long u has seen no request start or end, as of
// now (called by the reaper each tick).
func (u *unit) idleForLocked(now time.Time) time.Duration {
	if seen := u.lastUse.Load(); seen != u.seenUse {
		u.seenUse, u.activeAt = seen, now
	}
	return now.Sub(u.activeAt)
}

// instance is one started (or starting) process. Its goroutine
// (runInstance) owns the Proc; state changes go through s.mu.
type instance struct {
	u         *unit
	att       *attempt
	attDone   bool
	port      int
	pid       int
	addr      string
	startedAt time.Time
	ready     bool
	// inflight counts requests (and WebSockets) using this process.
	inflight atomic.Int64
	// releaseFn is in.release, bound once so Acquire does not allocate.
	releaseFn func()
	retired   bool
	drain     bool
	reason    string        // why it was retired, for the lifecycle line
	stopNow   chan struct{} // closed when retired
	exited    chan struct{} // closed when the goroutine is done

	// preloaded and preloadNote: what the preload runner said of the
	// process (SiteStatus.Preloaded, PreloadReason).
	preloaded   bool
	preloadNote string
}

// attempt is one start; waiters block on done, err says how it went.
type attempt struct {
	done chan struct{}
	err  error
}

// New returns a supervisor for cfg.Project; zero values take the defaults
// (Config.WithDefaults). No process starts until Acquire, Start or
// Restart. Call Close to stop everything; Run adds the idle reaper and
// code watcher.
//
// emit receives every state change (EventState), output line (EventLog)
// and background error (EventError) from the supervisor's own goroutine,
// in order, one call at a time; nil drops them. It must not block for
// long: events queue behind it, and past 10,000 queued events log lines
// are dropped (state events never are).
func New(cfg Config, emit func(Event)) *Supervisor {
	cfg = cfg.WithDefaults()
	s := &Supervisor{cfg: cfg, units: map[string]*unit{}, ports: map[int]bool{}}
	if cfg.Project != nil {
		s.root = cfg.Project.Root
		s.stateDir = cfg.Project.StateDir()
		if cfg.Project.Env != nil {
			s.forcedID = cfg.Project.ForcedID()
		}
	} else if wd, err := os.Getwd(); err == nil {
		s.root = wd
	}
	s.runner = cfg.Runner
	s.q = newEventQueue(emit)
	logDir := ""
	if s.stateDir != "" {
		logDir = filepath.Join(s.stateDir, "logs")
	}
	s.logs = newLogHub(logDir, s.q)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Preload {
		if s.preloadOff = preloadRefusal(cfg); s.preloadOff == "" {
			s.preload = newPreloadRunner(cfg.Runner.(*localRunner), s)
			s.runner = s.preload
		}
	}
	return s
}

// Preload says how site processes start when Config.Preload is set
// (docs/preload.md): whether preload applies, the warm parent, and why
// sites start the plain way. nil when Config.Preload is not set.
func (s *Supervisor) Preload() *PreloadStatus {
	switch {
	case !s.cfg.Preload:
		return nil
	case s.preload == nil:
		return &PreloadStatus{Reason: s.preloadOff}
	}
	return s.preload.status()
}

func (s *Supervisor) single() bool { return s.cfg.Mode == Single }

// SetSites sets the routed sites and the forced site id. In per-site mode
// processes of sites no longer listed are stopped. In single mode a changed
// forcedID restarts the one process; requests wait for the new one.
func (s *Supervisor) SetSites(list []sites.Site, forcedID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.list = append([]sites.Site(nil), list...)
	oldForced := s.forcedID
	s.forcedID = forcedID
	if s.single() {
		u := s.units[SingleSlug]
		if u == nil {
			return
		}
		u.site = s.forcedSiteLocked()
		if forcedID == oldForced {
			return
		}
		s.clearBackoffLocked(u) // another SITE_ID may well boot
		if u.cur != nil {
			s.logs.system(SingleSlug, "forced site changed to %d: restarting", forcedID)
			s.restartLocked(u, "forced site changed")
		}
		return
	}
	bySlug := make(map[string]*sites.Site, len(s.list))
	for i := range s.list {
		bySlug[s.list[i].Slug] = &s.list[i]
	}
	for key, u := range s.units {
		st, ok := bySlug[key]
		if !ok {
			s.retireLocked(u, "site no longer listed", false)
			delete(s.units, key)
			continue
		}
		u.site = *st
	}
	s.publishUnitsLocked()
}

// publishUnitsLocked refreshes the fast path's copy of s.units.
func (s *Supervisor) publishUnitsLocked() {
	m := make(map[string]*unit, len(s.units))
	for k, u := range s.units {
		m[k] = u
	}
	s.snap.Store(&m)
}

func (s *Supervisor) forcedSiteLocked() sites.Site {
	for _, st := range s.list {
		if st.ID == s.forcedID {
			return st
		}
	}
	return sites.Site{ID: s.forcedID}
}

// unitLocked returns the unit serving site, creating it.
func (s *Supervisor) unitLocked(site *sites.Site) *unit {
	key := site.Slug
	if s.single() {
		key = SingleSlug
	}
	u := s.units[key]
	if u == nil {
		u = &unit{key: key, state: Stopped, useSeq: &s.useSeq}
		if s.single() {
			u.site = s.forcedSiteLocked()
		} else {
			u.site = *site
		}
		s.units[key] = u
		s.publishUnitsLocked()
	}
	return u
}

// unitBySlugLocked finds the unit for a slug of the routed sites.
func (s *Supervisor) unitBySlugLocked(slug string) (*unit, error) {
	if s.single() {
		if slug != SingleSlug {
			if _, ok := sites.Find(s.list, slug); !ok && len(s.list) > 0 {
				return nil, sites.UnknownSiteError(s.list, slug)
			}
		}
		return s.unitLocked(&sites.Site{}), nil
	}
	if u := s.units[slug]; u != nil {
		return u, nil
	}
	st, ok := sites.Find(s.list, slug)
	if !ok {
		return nil, sites.UnknownSiteError(s.list, slug)
	}
	return s.unitLocked(st), nil
}

// Acquire returns the address of site's process, starting it if needed
// (exactly once for any number of concurrent callers) and waiting until it
// accepts connections, at most the boot timeout. While a reload or restart
// is under way it waits for the new process. release must be called when
// the request (or WebSocket) ends; a process with requests in flight is
// never idle. Errors: *BackoffError, *BootError, ErrClosed, ctx.Err().
func (s *Supervisor) Acquire(ctx context.Context, site *sites.Site) (addr string, release func(), err error) {
	// Fast path, no lock: the site's process is running. The re-check after
	// counting the request pairs with tryDetachIdleLocked.
	key := site.Slug
	if s.single() {
		key = SingleSlug
	}
	if m := s.snap.Load(); m != nil {
		if u := (*m)[key]; u != nil {
			if in := u.running.Load(); in != nil {
				in.inflight.Add(1)
				if u.running.Load() == in {
					return in.addr, in.releaseFn, nil
				}
				in.release()
			}
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", nil, ErrClosed
	}
	u := s.unitLocked(site)
	in, err := s.waitLocked(ctx, u, true)
	if err != nil {
		s.mu.Unlock()
		return "", nil, err
	}
	addr = in.addr
	s.mu.Unlock()
	return addr, in.releaseFn, nil
}

// Running returns the address and pid of slug's process when it is
// running (in single mode, the one process, whatever slug), without
// counting a request: the engine's identity probe uses it, and so never
// keeps a process from its idle stop.
func (s *Supervisor) Running(slug string) (addr string, pid int, ok bool) {
	key := slug
	if s.single() {
		key = SingleSlug
	}
	if m := s.snap.Load(); m != nil {
		if u := (*m)[key]; u != nil {
			if in := u.running.Load(); in != nil {
				return in.addr, in.pid, true
			}
		}
	}
	return "", 0, false
}

// release ends one request on in. Callers of Acquire call it exactly once.
func (in *instance) release() {
	in.u.touch()
	in.inflight.Add(-1)
}

// waitLocked brings u to Running, starting it when needed, and returns the
// running instance (with one request counted in flight when hold). It
// drops s.mu while it waits.
func (s *Supervisor) waitLocked(ctx context.Context, u *unit, hold bool) (*instance, error) {
	for {
		if s.closed {
			return nil, ErrClosed
		}
		switch u.state {
		case Running:
			in := u.cur
			if hold {
				in.inflight.Add(1)
			}
			u.touch()
			return in, nil
		case Starting:
			att := u.cur.att
			s.mu.Unlock()
			select {
			case <-att.done:
			case <-ctx.Done():
				s.mu.Lock()
				return nil, ctx.Err()
			}
			s.mu.Lock()
			if att.err != nil && (u.cur == nil || u.cur.att == att) {
				return nil, att.err
			}
		case Backoff:
			if time.Now().Before(u.backoffUntil) {
				return nil, s.backoffErrLocked(u)
			}
			s.launchLocked(u)
		case Stopped, Crashed:
			s.launchLocked(u)
		}
	}
}

func (s *Supervisor) backoffErrLocked(u *unit) *BackoffError {
	last := -1
	if u.lastExit != nil {
		last = *u.lastExit
	}
	return &BackoffError{Slug: u.key, Until: u.backoffUntil, Tail: s.logs.tail(u.key, TailLines), LastExit: last}
}

// launchLocked starts a new instance for u (state Starting), evicting the
// least recently used idle process first when --max-running is reached.
func (s *Supervisor) launchLocked(u *unit) *instance {
	if s.cfg.MaxRunning > 0 && !s.single() {
		s.evictForLocked(u)
	}
	in := &instance{
		u:       u,
		att:     &attempt{done: make(chan struct{})},
		stopNow: make(chan struct{}),
		exited:  make(chan struct{}),
	}
	in.releaseFn = in.release
	u.cur = in
	u.starts++
	u.touch()
	u.seenUse, u.activeAt = u.lastUse.Load(), time.Now()
	u.backoffUntil = time.Time{}
	s.setStateLocked(u, Starting)
	site, single, forced := u.site, s.single(), s.forcedID
	s.wg.Add(1)
	go s.runInstance(in, site, single, forced)
	return in
}

func (s *Supervisor) evictForLocked(u *unit) {
	live := 0
	for _, o := range s.units {
		if o != u && o.cur != nil {
			live++
		}
	}
	busy := map[*unit]bool{}
	for live >= s.cfg.MaxRunning {
		var lru *unit
		for _, o := range s.units {
			if o == u || o.state != Running || busy[o] || o.cur.inflight.Load() > 0 {
				continue
			}
			if lru == nil || o.lastUse.Load() < lru.lastUse.Load() {
				lru = o
			}
		}
		if lru == nil {
			s.logs.system(u.key, "max-running %d reached and every process is busy: starting anyway", s.cfg.MaxRunning)
			return
		}
		if !s.tryDetachIdleLocked(lru) {
			busy[lru] = true
			continue
		}
		s.retireLocked(lru, fmt.Sprintf("max-running %d, to start %s", s.cfg.MaxRunning, u.key), false)
		live--
	}
}

// tryDetachIdleLocked takes u's running process off Acquire's fast path
// if it has no request in flight; false (and nothing changed) when a
// request came in meanwhile. With Acquire's count-then-recheck this never
// stops a process that a request was just given.
func (s *Supervisor) tryDetachIdleLocked(u *unit) bool {
	in := u.cur
	if in == nil || in.inflight.Load() > 0 {
		return false
	}
	u.running.Store(nil)
	if in.inflight.Load() > 0 {
		u.running.Store(in)
		return false
	}
	return true
}

// retireLocked detaches u's instance (state Stopped) and tells its
// goroutine to stop it; with drain it first lets requests in flight end.
func (s *Supervisor) retireLocked(u *unit, reason string, drain bool) *instance {
	in := u.cur
	if in == nil {
		return nil
	}
	u.running.Store(nil)
	u.cur = nil
	s.retireInstanceLocked(in, reason, drain)
	s.setStateLocked(u, Stopped)
	return in
}

func (s *Supervisor) retireInstanceLocked(in *instance, reason string, drain bool) {
	if in.retired {
		return
	}
	in.retired, in.reason, in.drain = true, reason, drain
	close(in.stopNow)
	s.finishAttemptLocked(in, fmt.Errorf("process stopped before it was ready: %s", reason))
}

// restartLocked replaces u's process: new requests wait for the new one,
// the old one finishes what it serves (up to reloadDrain) and is stopped.
func (s *Supervisor) restartLocked(u *unit, reason string) {
	if old := u.cur; old != nil {
		u.running.Store(nil)
		u.cur = nil
		s.retireInstanceLocked(old, reason, true)
	}
	s.launchLocked(u)
}

func (s *Supervisor) finishAttemptLocked(in *instance, err error) {
	if in.attDone {
		return
	}
	in.attDone = true
	in.att.err = err
	close(in.att.done)
}

func (s *Supervisor) setStateLocked(u *unit, st State) {
	u.state = st
	if st == Running {
		u.running.Store(u.cur)
	} else {
		u.running.Store(nil)
	}
	s.emitStateLocked(u)
}

func (s *Supervisor) emitStateLocked(u *unit) {
	if s.single() {
		for i := range s.list {
			s.q.push(Event{Kind: EventState, Site: s.statusLocked(&s.list[i], u)})
		}
		if len(s.list) == 0 {
			s.q.push(Event{Kind: EventState, Site: s.statusLocked(&u.site, u)})
		}
		return
	}
	s.q.push(Event{Kind: EventState, Site: s.statusLocked(&u.site, u)})
}

func (s *Supervisor) statusLocked(site *sites.Site, u *unit) SiteStatus {
	st := SiteStatus{ID: site.ID, Slug: site.Slug, Domain: site.Domain, State: Stopped}
	if u == nil {
		return st
	}
	st.State = u.state
	if u.starts > 1 {
		st.Restarts = u.starts - 1
	}
	if u.lastExit != nil {
		v := *u.lastExit
		st.LastExit = &v
	}
	if in := u.cur; in != nil {
		st.PID, st.Port, st.StartedAt = in.pid, in.port, in.startedAt
		st.Preloaded = in.preloaded
		if !in.preloaded && s.preload != nil {
			st.PreloadReason = strings.TrimPrefix(in.preloadNote, plainNotePrefix)
		}
	}
	if u.state == Backoff {
		st.BackoffUntil = u.backoffUntil
	}
	return st
}

// Statuses returns every routed site's process state, in SetSites order
// (Requests is left 0: the proxy counts requests).
func (s *Supervisor) Statuses() []SiteStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SiteStatus, 0, len(s.list))
	seen := map[string]bool{}
	for i := range s.list {
		key := s.list[i].Slug
		if s.single() {
			key = SingleSlug
		}
		seen[s.list[i].Slug] = true
		out = append(out, s.statusLocked(&s.list[i], s.units[key]))
	}
	if !s.single() {
		var extra []string
		for key := range s.units {
			if !seen[key] {
				extra = append(extra, key)
			}
		}
		sort.Strings(extra)
		for _, key := range extra {
			u := s.units[key]
			out = append(out, s.statusLocked(&u.site, u))
		}
	}
	return out
}

// Logs returns the last n lines (n <= 0: all kept, at least 2,000) of a
// site's output and lifecycle lines. In single mode every slug gives the
// one process's lines.
func (s *Supervisor) Logs(slug string, n int) []LogLine {
	if s.single() {
		slug = SingleSlug
	}
	return s.logs.lines(slug, n)
}

// Start starts slug's process (clearing a backoff) and waits until it
// accepts connections or fails. It returns at once when already running.
func (s *Supervisor) Start(ctx context.Context, slug string) error {
	return s.act(ctx, slug, nil)
}

// Stop stops slug's process (SIGTERM to its group, SIGKILL after 5 s) and
// waits until it is gone. The next request starts it again.
func (s *Supervisor) Stop(ctx context.Context, slug string) error {
	s.mu.Lock()
	u, err := s.unitBySlugLocked(slug)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	in := s.retireLocked(u, "stop requested", false)
	if in == nil && u.state != Stopped {
		// Crashed or in backoff: now deliberately stopped.
		u.backoffUntil = time.Time{}
		s.setStateLocked(u, Stopped)
	}
	s.mu.Unlock()
	if in == nil {
		return nil
	}
	select {
	case <-in.exited:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Restart replaces slug's process (or starts it) and waits until the new
// one accepts connections. Requests arriving meanwhile wait for it.
func (s *Supervisor) Restart(ctx context.Context, slug string) error {
	return s.act(ctx, slug, func(u *unit) {
		if u.cur != nil {
			s.logs.system(u.key, "restart requested")
			s.restartLocked(u, "restart requested")
		}
	})
}

// act takes the lock, clears slug's backoff, runs do (if any) and
// waits until the site's process accepts connections: the shared body of
// Start and Restart.
func (s *Supervisor) act(ctx context.Context, slug string, do func(*unit)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	u, err := s.unitBySlugLocked(slug)
	if err != nil {
		return err
	}
	s.clearBackoffLocked(u)
	if do != nil {
		do(u)
	}
	_, err = s.waitLocked(ctx, u, false)
	return err
}

func (s *Supervisor) clearBackoffLocked(u *unit) {
	u.failStreak = 0
	u.backoffUntil = time.Time{}
	if u.state == Backoff {
		s.setStateLocked(u, Crashed)
	}
}

// ReloadCode restarts every running or starting process (requests wait for
// the new ones; none is dropped) and clears every backoff. The code watcher
// calls it, debounced.
func (s *Supervisor) ReloadCode() { s.reload("code changed") }

func (s *Supervisor) reload(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	if s.preload != nil {
		// New processes fork from a new warm parent with the new code.
		s.preload.codeChanged()
	}
	keys := make([]string, 0, len(s.units))
	for k := range s.units {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		u := s.units[k]
		s.clearBackoffLocked(u)
		if u.cur != nil {
			s.logs.system(u.key, "%s: restarting", reason)
			s.restartLocked(u, reason)
		}
	}
}

// Run runs the idle reaper and, when cfg.Watch, the code watcher, until
// ctx ends or Close is called. Watcher problems become EventError events.
func (s *Supervisor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel) // Close ends Run too
	defer stop()
	if s.cfg.Watch && s.cfg.Project != nil {
		w, err := newWatcher(s.root, defaultDebounce, s.codeChanged, s.backgroundError)
		if err != nil {
			s.backgroundError(err)
		} else {
			watched := make(chan struct{})
			go s.watch(ctx, w, watched)
			defer func() { <-watched }()
		}
	}
	s.reapIdle(ctx)
	return nil
}

// watch is the code watcher's goroutine.
func (s *Supervisor) watch(ctx context.Context, w *watcher, done chan<- struct{}) {
	defer close(done)
	_ = w.Run(ctx)
}

// backgroundError reports a problem that does not stop the supervisor.
func (s *Supervisor) backgroundError(err error) { s.q.push(Event{Kind: EventError, Err: err}) }

// codeChanged is the watcher's callback.
func (s *Supervisor) codeChanged(paths []string) {
	what := strings.Join(paths, ", ")
	if len(paths) > 3 {
		what = strings.Join(paths[:3], ", ") + fmt.Sprintf(" and %d more", len(paths)-3)
	}
	s.reload("code changed (" + what + ")")
}

// reapIdle stops processes idle for longer than the idle timeout and moves
// sites whose backoff ran out from backoff to crashed (shown as such; the
// next request starts them).
func (s *Supervisor) reapIdle(ctx context.Context) {
	idle := s.cfg.IdleTimeout
	tick := time.Second
	if idle > 0 {
		tick = min(max(idle/4, 10*time.Millisecond), time.Second)
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			for _, u := range s.units {
				switch u.state {
				case Running:
					if idle > 0 && u.cur.inflight.Load() == 0 && u.idleForLocked(now) >= idle && s.tryDetachIdleLocked(u) {
						s.retireLocked(u, "idle "+fmtDuration(idle), false)
					}
				case Backoff:
					if now.After(u.backoffUntil) {
						s.setStateLocked(u, Crashed)
					}
				case Stopped, Starting, Crashed:
				}
			}
			s.mu.Unlock()
		}
	}
}

// Close stops every process (SIGTERM to each group, SIGKILL after 5 s) and
// waits for them, or until ctx ends. Later calls to Acquire fail with
// ErrClosed.
func (s *Supervisor) Close(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for _, u := range s.units {
			s.retireLocked(u, "siteplex stopping", false)
		}
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go s.waitInstances(done)
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("stopping site processes: %w", ctx.Err())
	}
	switch r := s.runner.(type) {
	case *localRunner:
		r.Close()
	case *preloadRunner:
		r.Close()
	}
	s.logs.close()
	s.q.close()
	return err
}

// waitInstances closes done when every instance goroutine has ended.
func (s *Supervisor) waitInstances(done chan<- struct{}) {
	s.wg.Wait()
	close(done)
}

// runInstance is the goroutine of one process: it starts it, waits until
// it accepts connections, stops it when retired and records how it ended.
func (s *Supervisor) runInstance(in *instance, site sites.Site, single bool, forced int64) {
	defer s.wg.Done()
	defer close(in.exited)
	u := in.u
	key := u.key

	port, err := s.allocPort()
	if err != nil {
		s.startFailed(in, err)
		return
	}
	defer s.freePort(port)
	token := newToken()
	spec, err := s.buildSpec(site, single, forced, port, token)
	if err != nil {
		s.startFailed(in, err)
		return
	}
	stdout := &lineWriter{hub: s.logs, slug: key}
	stderr := &lineWriter{hub: s.logs, slug: key, stderr: true}
	spec.Stdout, spec.Stderr = stdout, stderr
	s.logs.system(key, "starting: %s", quoteArgv(spec.Argv))

	s.mu.Lock()
	if in.retired {
		s.finishAttemptLocked(in, fmt.Errorf("process stopped before it was ready: %s", in.reason))
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	p, err := s.runner.Start(s.ctx, spec)
	if err != nil {
		s.startFailed(in, err)
		return
	}
	preloaded, note := false, ""
	if pn, ok := p.(preloadNoter); ok {
		preloaded, note = pn.preloadNote()
		s.logs.system(key, "%s", note)
	}
	var pidFile string
	if p.PID() > 0 && s.stateDir != "" {
		pidFile, err = writePidFile(s.stateDir, pidRecord{
			PID: p.PID(), PGID: p.PID(), Token: token, Slug: key, Argv: spec.Argv, Started: time.Now(),
		})
		if err != nil {
			s.backgroundError(err)
		}
	}

	s.mu.Lock()
	in.port, in.pid, in.addr, in.startedAt = port, p.PID(), p.Addr(), time.Now()
	in.preloaded, in.preloadNote = preloaded, note
	if u.cur == in {
		s.emitStateLocked(u)
	}
	s.mu.Unlock()

	exitc := make(chan exitResult, 1)
	go waitProc(p, exitc)

	var res exitResult
	exited, timedOut := false, false
	select {
	case <-in.stopNow:
	default:
		res, exited, timedOut = s.awaitReady(in, p.Addr(), exitc)
	}
	if !exited {
		if timedOut {
			s.logs.system(key, "did not accept connections on %s within %s: stopping it", p.Addr(), fmtDuration(s.cfg.BootTimeout))
			_ = p.Stop(context.Background(), stopGrace)
			res = <-exitc
		} else {
			select {
			case res = <-exitc:
			case <-in.stopNow:
				s.drainInstance(in, exitc)
				_ = p.Stop(context.Background(), stopGrace)
				res = <-exitc
			}
		}
	}
	stdout.Flush()
	stderr.Flush()
	if pidFile != "" {
		_ = os.Remove(pidFile)
	}

	s.mu.Lock()
	wasRetired, reason, ready := in.retired, in.reason, in.ready
	s.mu.Unlock()
	switch {
	case wasRetired:
		s.logs.system(key, "stopped (%s)", reason)
	case res.err != nil:
		s.logs.system(key, "lost the process: %v", res.err)
	default:
		s.logs.system(key, "exited with status %d", res.code)
	}
	s.logs.sync()

	s.mu.Lock()
	defer s.mu.Unlock()
	if wasRetired || in.retired {
		s.finishAttemptLocked(in, fmt.Errorf("process stopped: %s", reason))
		return
	}
	// An unexpected exit: the instance is still u.cur.
	code := res.code
	u.lastExit = &code
	u.cur = nil
	if ready {
		u.failStreak = 0
		s.setStateLocked(u, Crashed)
		return
	}
	u.failStreak++
	cause := fmt.Errorf("exited with status %d before accepting connections", code)
	if timedOut {
		cause = fmt.Errorf("did not accept connections on port %d within %s", port, fmtDuration(s.cfg.BootTimeout))
	}
	if u.failStreak >= backoffAfter {
		d := backoffDelay(u.failStreak)
		u.backoffUntil = time.Now().Add(d)
		s.logs.system(key, "died %d times before it was ready: next start in %s (or on a code change)", u.failStreak, fmtDuration(d))
		s.setStateLocked(u, Backoff)
		s.finishAttemptLocked(in, s.backoffErrLocked(u))
		return
	}
	s.setStateLocked(u, Crashed)
	s.finishAttemptLocked(in, &BootError{Slug: key, Tail: s.logs.tail(key, TailLines), Err: cause})
}

// startFailed records a process that could not even be started (bad
// command, no free port): it counts as a death before ready.
func (s *Supervisor) startFailed(in *instance, err error) {
	u := in.u
	s.logs.system(u.key, "could not start: %v", err)
	s.logs.sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.retired {
		s.finishAttemptLocked(in, err)
		return
	}
	u.cur = nil
	u.failStreak++
	if u.failStreak >= backoffAfter {
		u.backoffUntil = time.Now().Add(backoffDelay(u.failStreak))
		s.setStateLocked(u, Backoff)
		s.finishAttemptLocked(in, s.backoffErrLocked(u))
		return
	}
	s.setStateLocked(u, Crashed)
	s.finishAttemptLocked(in, &BootError{Slug: u.key, Tail: s.logs.tail(u.key, TailLines), Err: err})
}

// awaitReady polls addr until it accepts a connection, the process exits,
// the instance is retired or the boot timeout passes.
func (s *Supervisor) awaitReady(in *instance, addr string, exitc chan exitResult) (res exitResult, exited, timedOut bool) {
	deadline := time.NewTimer(s.cfg.BootTimeout)
	defer deadline.Stop()
	interval := 2 * time.Millisecond
	poll := time.NewTimer(0)
	defer poll.Stop()
	d := net.Dialer{Timeout: time.Second}
	for {
		select {
		case res = <-exitc:
			return res, true, false
		case <-in.stopNow:
			return res, false, false
		case <-deadline.C:
			return res, false, true
		case <-poll.C:
		}
		c, err := d.DialContext(s.ctx, "tcp", addr)
		if err == nil {
			c.Close()
			s.mu.Lock()
			if !in.retired {
				in.ready = true
				u := in.u
				u.failStreak = 0
				u.touch()
				s.setStateLocked(u, Running)
				s.finishAttemptLocked(in, nil)
			}
			s.mu.Unlock()
			s.logs.system(in.u.key, "ready on %s after %s", addr, time.Since(in.startedAt).Round(time.Millisecond))
			return res, false, false
		}
		interval = min(interval*2, 5*time.Millisecond)
		poll.Reset(interval)
	}
}

// drainInstance waits (up to reloadDrain) until a retired instance has no
// request in flight, when it was retired with drain.
func (s *Supervisor) drainInstance(in *instance, exitc chan exitResult) {
	deadline := time.Now().Add(reloadDrain)
	for {
		s.mu.Lock()
		busy := in.drain && in.inflight.Load() > 0
		s.mu.Unlock()
		if !busy || time.Now().After(deadline) {
			return
		}
		select {
		case r := <-exitc:
			exitc <- r // put it back for the caller
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

type exitResult struct {
	code int
	err  error
}

func waitProc(p Proc, c chan<- exitResult) {
	code, err := p.Wait()
	c <- exitResult{code, err}
}

func backoffDelay(streak int) time.Duration {
	n := streak - backoffAfter
	if n > 5 {
		return backoffMax
	}
	return min(time.Second<<n, backoffMax)
}

func (s *Supervisor) allocPort() (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("finding a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		s.mu.Lock()
		taken := s.ports[port]
		if !taken {
			s.ports[port] = true
		}
		s.mu.Unlock()
		if !taken {
			return port, nil
		}
	}
	return 0, errors.New("finding a free port: every port tried is in use")
}

func (s *Supervisor) freePort(port int) {
	s.mu.Lock()
	delete(s.ports, port)
	s.mu.Unlock()
}

// buildSpec makes the argv and environment of a process
// (docs/supervisor.md, "The command").
func (s *Supervisor) buildSpec(site sites.Site, single bool, forced int64, port int, token string) (ProcessSpec, error) {
	tmpl := s.cfg.Command
	if !single && len(site.Command) > 0 {
		tmpl = site.Command
	}
	var proj *sites.Config
	if s.cfg.Project != nil {
		proj = s.cfg.Project.Config
	}
	if len(tmpl) == 0 && proj != nil && len(proj.Process.Command) > 0 {
		tmpl = proj.Process.Command
	}
	if len(tmpl) == 0 {
		py := s.cfg.Python
		if py == "" {
			// The search introspection uses too (docs/django.md); without
			// any, python3 fails at start with its own message.
			py = "python3"
			if found, _, err := django.FindPython(s.root, "", "", s.root); err == nil {
				py = found
			}
		}
		tmpl = RunserverCommand(py)
	}
	siteID := ""
	switch {
	case single && forced != 0:
		siteID = strconv.FormatInt(forced, 10)
	case !single:
		siteID = strconv.FormatInt(site.ID, 10)
	}
	vars := strings.NewReplacer(
		"{port}", strconv.Itoa(port),
		"{site_id}", siteID,
		"{slug}", site.Slug,
		"{domain}", site.Domain,
		"{root}", s.root,
	)
	argv := make([]string, len(tmpl))
	for i, a := range tmpl {
		argv[i] = vars.Replace(a)
	}
	if argv[0] == "" {
		return ProcessSpec{}, errors.New("empty command: the first word of the command is empty")
	}

	base := os.Environ()
	if s.cfg.Project != nil {
		base = s.cfg.Project.ProcessEnv()
	}
	env := newEnvList(base)
	if siteID != "" {
		env.set("SITE_ID", siteID)
	}
	env.set("PORT", strconv.Itoa(port))
	env.set("PYTHONUNBUFFERED", "1")
	env.setMap(site.Env)
	if s.cfg.ProcessEnv != nil {
		add, err := s.cfg.ProcessEnv(site, single, forced, env.lookup)
		if err != nil {
			return ProcessSpec{}, err
		}
		for _, kv := range add {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
				env.set(k, v)
			}
		}
	}
	env.set(procTokenEnv, token)
	return ProcessSpec{Site: site, Port: port, Argv: argv, Env: env.list(), Dir: s.root, Single: single}, nil
}

// envList is an environment where a later set wins, in first-seen order.
type envList struct {
	keys []string
	vals map[string]string
}

func newEnvList(base []string) *envList {
	e := &envList{vals: map[string]string{}}
	for _, kv := range base {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" {
			e.set(k, v)
		}
	}
	return e
}

func (e *envList) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *envList) lookup(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *envList) setMap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.set(k, m[k])
	}
}

func (e *envList) list() []string {
	out := make([]string, len(e.keys))
	for i, k := range e.keys {
		out[i] = k + "=" + e.vals[k]
	}
	return out
}

// quoteArgv renders an argv for a log line, quoting words that need it.
func quoteArgv(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			parts[i] = strconv.Quote(a)
		} else {
			parts[i] = a
		}
	}
	return strings.Join(parts, " ")
}

func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
