package devproxy

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/sites"
)

// defaultListen are the addresses the engine binds without --listen.
func defaultListen() []string { return []string{"127.0.0.1:80", "[::1]:80"} }

// pollInterval is how often the engine re-reads the sites to notice table
// changes.
const pollInterval = 3 * time.Second

// maxRequests is how many request records the engine keeps.
const maxRequests = 1000

// Engine is siteplex's proxy with its supervisor. New makes one, Start binds
// and serves, Close shuts everything down. All methods are safe for
// concurrent use.
type Engine struct {
	cfg   Config
	sup   *supervisor.Supervisor
	rp    *httputil.ReverseProxy
	tr    *http.Transport
	bufs  *bufferPool
	lim   limits
	token string

	// table is the current routing table (never nil after New).
	table atomic.Pointer[routeTable]
	// tls is the HTTPS part (nil: HTTPS off); see https.go.
	tls *tlsState

	// mu guards list, loaded, readOnce, forced, counters, servers, addrs,
	// httpsAddrs, started and lastPollErr.
	mu     sync.Mutex
	list   []sites.Site
	loaded []sites.Site // as LoadSites returned them, for change detection
	// readOnce is true once a read of the sites worked.
	readOnce    bool
	forced      int64
	counters    map[string]*atomic.Int64
	servers     []*http.Server
	addrs       []string
	httpsAddrs  []string
	started     bool
	lastPollErr string
	// noted are the unrouted wildcard aliases already reported.
	noted map[string]bool
	// envForced is the SITE_ID last seen in the env file.
	envForced string

	// ident is the overlay set-up Start decided (nil before Start);
	// probes runs the identity probes (identity.go).
	ident  atomic.Pointer[identitySetup]
	probes *prober

	// acquire hands out backend addresses (the supervisor's Acquire;
	// tests may replace it before Start).
	acquire acquireFunc

	// reqMu guards reqs and reqN.
	reqMu sync.Mutex
	reqs  [maxRequests]RequestRecord
	reqN  int

	// subMu guards subs, nextSub and subsClosed; wanted is the union of
	// the subscribers' kinds, for a lock-free "anyone listening?" check.
	subMu      sync.RWMutex
	subs       map[int]subscriber
	nextSub    int
	subsClosed bool
	wanted     atomic.Uint32

	runCtx context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
	done   chan struct{}
	// closing is closed when Close begins (long-lived API streams end).
	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
	waitErr   error
}

// New makes an engine from cfg, filling in the defaults. It starts
// nothing; call Start.
func New(cfg Config) (*Engine, error) {
	if len(cfg.Listen) == 0 {
		cfg.Listen = defaultListen()
	}
	cfg.Config = cfg.Config.WithDefaults()
	switch cfg.Mode {
	case PerSite, Single:
	default:
		return nil, sites.Usagef("unknown mode %q: use per-site or single", cfg.Mode)
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	tok := make([]byte, 24)
	if _, err := rand.Read(tok); err != nil {
		return nil, fmt.Errorf("making the control token: %w", err)
	}
	e := &Engine{
		cfg:      cfg,
		token:    hex.EncodeToString(tok),
		counters: map[string]*atomic.Int64{},
		noted:    map[string]bool{},
		subs:     map[int]subscriber{},
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
	}
	e.lim = defaultLimits()
	e.tr = newTransport()
	e.bufs = newBufferPool()
	e.rp = e.newReverseProxy()
	e.probes = newProber()
	e.cfg.Config.ProcessEnv = e.processEnv
	e.sup = supervisor.New(e.cfg.Config, e.supervisorEvent)
	e.acquire = func(ctx context.Context, r *siteRoute) (string, func(), error) {
		return e.sup.Acquire(ctx, r.site)
	}
	e.table.Store(buildTable(nil, 0, e.counters, routeOpts{}))
	if cfg.HTTPS != nil {
		ts, err := e.newTLSState(cfg.HTTPS)
		if err != nil {
			return nil, err
		}
		e.tls = ts
	}
	return e, nil
}

// ListenError is a listen address that could not be bound. For a refused
// privileged port, Error spells out the ways out (docs/engine.md,
// docs/https.md).
type ListenError struct {
	Addr string
	Err  error
	// HTTPS: the address is one of the HTTPS listeners; ByDefault: HTTPS
	// is on only because the local CA exists (no --https, no config).
	HTTPS, ByDefault bool
}

func (e *ListenError) Unwrap() error { return e.Err }

func (e *ListenError) Error() string {
	what := ""
	if e.HTTPS {
		what = " for HTTPS"
	}
	ways := e.WaysOut("siteplex serve")
	switch {
	case e.privileged():
		var b strings.Builder
		fmt.Fprintf(&b, "cannot listen on %s%s: %v (ports below 1024 need privileges).\nWays out:", e.Addr, what, e.Err)
		for _, w := range ways {
			fmt.Fprintf(&b, "\n  - %-31s %s", w.Label+":", w.Command)
		}
		return b.String()
	case errors.Is(e.Err, syscall.EADDRINUSE):
		msg := fmt.Sprintf("cannot listen on %s%s: another program uses that port (stop it, or pick another with %s)", e.Addr, what, ways[0].Command)
		if len(ways) > 1 {
			msg += "; or " + strings.TrimPrefix(ways[1].Label, "or ") + ": " + ways[1].Command
		}
		return msg
	}
	return fmt.Sprintf("cannot listen on %s%s: %v", e.Addr, what, e.Err)
}

// WayOut is one way past a failed bind: what it does and the command.
type WayOut struct{ Label, Command string }

// WaysOut lists the ways past the failed bind, for a user who ran prog
// ("siteplex serve", "siteplex"): for a refused privileged port, setcap,
// the sysctl and another port; for a port in use, another port; plus,
// when HTTPS is on only because the local CA exists, turning it off. nil
// for other errors.
func (e *ListenError) WaysOut(prog string) []WayOut {
	flag, other := "--listen", "127.0.0.1:8080"
	if e.HTTPS {
		flag, other = "--https", "127.0.0.1:8443"
	}
	var ways []WayOut
	switch {
	case e.privileged():
		port := portOf(e.Addr)
		ways = []WayOut{
			{"let siteplex bind low ports", "sudo setcap cap_net_bind_service=+ep $(which siteplex)"},
			{"or allow unprivileged port " + port, "sudo sysctl net.ipv4.ip_unprivileged_port_start=" + port},
			{"or use another port", prog + " " + flag + " " + other},
		}
	case errors.Is(e.Err, syscall.EADDRINUSE):
		ways = []WayOut{{"or use another port", prog + " " + flag + " " + other}}
	default:
		return nil
	}
	if e.ByDefault {
		ways = append(ways, WayOut{"or serve plain HTTP only", prog + ` --https off   (HTTPS is on because the local CA exists; in siteplex.toml: https = "off")`})
	}
	return ways
}

// Privileged reports whether the bind was refused for lack of privileges.
func (e *ListenError) privileged() bool {
	return errors.Is(e.Err, syscall.EACCES) || errors.Is(e.Err, syscall.EPERM)
}

// normListen makes an address without a host loopback-only (":8080" →
// "127.0.0.1:8080"); an explicit host, even 0.0.0.0, is kept.
func normListen(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	return addr
}

// bind opens every listen address: the plain ones, then the HTTPS ones.
// An IPv6 default that the machine cannot bind (no ::1) is skipped;
// anything else is an error, and nothing stays bound.
func (e *Engine) bind() (plain, secure []net.Listener, err error) {
	plain, err = bindAll(e.cfg.Listen, reflect.DeepEqual(e.cfg.Listen, defaultListen()), func(le *ListenError) {})
	if err != nil {
		return nil, nil, err
	}
	addrs, byDefault := e.httpsListen()
	secure, err = bindAll(addrs, byDefault, func(le *ListenError) { le.HTTPS, le.ByDefault = true, byDefault })
	if err != nil {
		closeAll(plain)
		return nil, nil, err
	}
	return plain, secure, nil
}

// bindAll listens on addrs; with defaults, an IPv6 address the machine
// lacks is skipped once another one is bound. mark fills in a
// ListenError's kind.
func bindAll(addrs []string, defaults bool, mark func(*ListenError)) ([]net.Listener, error) {
	var lns []net.Listener
	for _, a := range addrs {
		addr := normListen(a)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if defaults && strings.HasPrefix(addr, "[") && len(lns) > 0 &&
				(errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.EAFNOSUPPORT)) {
				continue
			}
			closeAll(lns)
			le := &ListenError{Addr: addr, Err: unwrapSyscall(err)}
			mark(le)
			return nil, le
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		l.Close()
	}
}

// unwrapSyscall returns the OS error inside a net.OpError (for a shorter
// message), else err.
func unwrapSyscall(err error) error {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err
	}
	return err
}

// Start binds the listeners, claims .siteplex/engine.json, loads the sites
// and starts serving and supervising. It returns once every listener is
// bound, with a *ListenError when one cannot be, or a *RunningError when
// another live engine holds the project's engine.json (nothing of that
// engine is touched). A failure to load the sites is not fatal: the engine
// serves its index, reports an EventError and keeps retrying.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("engine already started")
	}
	e.started = true
	e.mu.Unlock()
	lns, secure, err := e.claim()
	if err != nil {
		// Nothing started: the caller (the UI) may call Start again.
		e.mu.Lock()
		e.started = false
		e.mu.Unlock()
		return err
	}
	e.runCtx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.setupIdentity(ctx)

	if dir := e.stateDir(); dir != "" {
		if n, err := supervisor.SweepStale(dir); err != nil {
			fmt.Fprintf(e.cfg.Log, "siteplex: sweeping stale processes: %v\n", err)
		} else if n > 0 {
			fmt.Fprintf(e.cfg.Log, "siteplex: stopped %d stale process(es) left by an earlier run\n", n)
		}
	}
	forced := int64(0)
	if e.cfg.Project != nil && e.cfg.Project.Env != nil {
		forced = e.cfg.Project.ForcedID()
	}
	e.mu.Lock()
	e.forced = forced
	if e.cfg.Project != nil && e.cfg.Project.Env != nil {
		e.envForced = strings.TrimSpace(e.cfg.Project.Env.Values["SITE_ID"])
	}
	e.mu.Unlock()
	if err := e.load(ctx); err != nil {
		e.noteLoad(err)
		e.emit(Event{Kind: EventError, Err: fmt.Errorf("%w (retrying every %s)", err, pollInterval)})
	}

	e.bg.Add(2)
	go e.runSupervisor()
	go e.pollLoop()
	if e.cfg.StartAll {
		e.bg.Add(1)
		go e.startAll()
	}
	for _, ln := range lns {
		e.serve(ln, nil)
	}
	for _, ln := range secure {
		e.serve(ln, e.tls.conf)
	}
	return nil
}

// claim binds the listeners and writes engine.json, refusing when another
// live engine runs for the project (checked before binding, so its ports
// are not taken, and again when the file is created, so two engines
// starting at once cannot both win).
func (e *Engine) claim() (plain, secure []net.Listener, err error) {
	dir := e.stateDir()
	if dir != "" {
		if ef, err := ReadEngineFile(dir); err == nil {
			return nil, nil, &RunningError{Engine: *ef, Dir: dir}
		}
	}
	plain, secure, err = e.bind()
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	for _, ln := range plain {
		e.addrs = append(e.addrs, ln.Addr().String())
	}
	for _, ln := range secure {
		e.httpsAddrs = append(e.httpsAddrs, ln.Addr().String())
	}
	e.mu.Unlock()
	if err := e.writeEngineFile(); err != nil {
		var re *RunningError
		if errors.As(err, &re) {
			closeAll(plain)
			closeAll(secure)
			e.mu.Lock()
			e.addrs, e.httpsAddrs = nil, nil
			e.mu.Unlock()
			return nil, nil, err
		}
		fmt.Fprintf(e.cfg.Log, "siteplex: %v (siteplex use and a second UI will not reach this engine)\n", err)
	}
	return plain, secure, nil
}

// serve serves the engine on ln until Close, with net/http's server and
// the limits of docs/engine.md ("What siteplex refuses"). With tlsConf it
// serves TLS (HTTP/2 included) on ln; the handler and every rule are the
// same, and X-Forwarded-Proto says https.
func (e *Engine) serve(ln net.Listener, tlsConf *tls.Config) {
	srv := &http.Server{
		Handler:           e,
		ReadHeaderTimeout: e.lim.readHeader,
		IdleTimeout:       e.lim.keepAlive,
		MaxHeaderBytes:    e.lim.maxHeaderBytes,
		TLSConfig:         tlsConf,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	e.mu.Lock()
	e.servers = append(e.servers, srv)
	e.mu.Unlock()
	e.bg.Add(1)
	go e.runServer(srv, ln)
}

// runServer is the goroutine of one server.
func (e *Engine) runServer(srv *http.Server, ln net.Listener) {
	defer e.bg.Done()
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		e.emit(Event{Kind: EventError, Err: fmt.Errorf("serving %s: %w", ln.Addr(), err)})
	}
}

// runSupervisor runs the supervisor until the engine closes.
func (e *Engine) runSupervisor() {
	defer e.bg.Done()
	if err := e.sup.Run(e.runCtx); err != nil && e.runCtx.Err() == nil {
		e.emit(Event{Kind: EventError, Err: fmt.Errorf("supervisor: %w", err)})
	}
}

// startAll starts every routable site's process (--start all); in single
// mode the one shared process.
func (e *Engine) startAll() {
	defer e.bg.Done()
	t := e.table.Load()
	var slugs []string
	for i := range t.all {
		if rt := t.bySlug[t.all[i].Slug]; rt != nil && rt.site == &t.all[i] {
			slugs = append(slugs, rt.site.Slug)
		}
	}
	if e.cfg.Mode == Single && len(slugs) > 1 {
		slugs = slugs[:1]
		if t.forcedRoute != nil {
			slugs[0] = t.forcedRoute.site.Slug
		}
	}
	var wg sync.WaitGroup
	for _, slug := range slugs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.sup.Start(e.runCtx, slug); err != nil && e.runCtx.Err() == nil {
				e.emit(Event{Kind: EventError, Err: fmt.Errorf("starting %s: %w", slug, err)})
			}
		}()
	}
	wg.Wait()
}

// pollLoop re-reads the sites every pollInterval until Close.
func (e *Engine) pollLoop() {
	defer e.bg.Done()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-e.runCtx.Done():
			return
		case <-t.C:
		}
		e.pollEnvFile()
		ctx, cancel := context.WithTimeout(e.runCtx, 10*time.Second)
		err := e.load(ctx)
		cancel()
		changed := e.noteLoad(err)
		if err != nil && changed && e.runCtx.Err() == nil {
			e.emit(Event{Kind: EventError, Err: err})
		}
	}
}

// noteLoad keeps the outcome of a read of the sites (nil: it worked) for
// the status and the pages, and reports whether it changed.
func (e *Engine) noteLoad(err error) bool {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	changed := msg != e.lastPollErr
	e.lastPollErr = msg
	return changed
}

// sitesError is why the sites could not be read, with what the engine
// does about it, for the status and the pages; "" when the last read
// worked.
func (e *Engine) sitesError() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.lastPollErr == "" {
		return ""
	}
	if !e.readOnce {
		return fmt.Sprintf("%s; siteplex knows no site until it can read them, and tries again every %s", e.lastPollErr, pollInterval)
	}
	return fmt.Sprintf("%s; siteplex routes the sites it read before, and tries again every %s", e.lastPollErr, pollInterval)
}

// pollEnvFile notices a SITE_ID edited in the env file by hand (or by
// `siteplex use` without a running engine) and makes it the forced site.
// A forced site set through Use is kept until the file itself changes.
func (e *Engine) pollEnvFile() {
	p := e.cfg.Project
	if p == nil || p.Env == nil || p.Env.Path == "" {
		return
	}
	ef, err := sites.ReadEnvFile(p.Env.Path)
	if err != nil {
		return
	}
	v := strings.TrimSpace(ef.Values["SITE_ID"])
	e.mu.Lock()
	changed := v != e.envForced
	e.envForced = v
	cur := e.forced
	e.mu.Unlock()
	if !changed {
		return
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		id = 0
	}
	if id != cur {
		e.apply(nil, &id)
	}
}

// load reads the sites and applies them when they changed.
func (e *Engine) load(ctx context.Context) error {
	if e.cfg.LoadSites == nil {
		return nil
	}
	list, err := e.cfg.LoadSites(ctx)
	if err != nil {
		return fmt.Errorf("loading sites: %w", err)
	}
	e.mu.Lock()
	e.readOnce = true
	if e.loaded != nil && reflect.DeepEqual(list, e.loaded) {
		e.mu.Unlock()
		return nil
	}
	e.loaded = list
	e.mu.Unlock()
	e.apply(sitesCopy(list), nil)
	return nil
}

func sitesCopy(list []sites.Site) []sites.Site {
	out := make([]sites.Site, len(list))
	copy(out, list)
	return out
}

// apply installs list (nil = keep the current list) and, when forced is
// non-nil, a new forced site: it marks the forced site, hands the list to
// the supervisor and swaps the routing table.
func (e *Engine) apply(list []sites.Site, forced *int64) {
	e.mu.Lock()
	if list == nil {
		list = sitesCopy(e.list)
	}
	if forced != nil {
		e.forced = *forced
	}
	for i := range list {
		list[i].Forced = e.forced != 0 && list[i].ID == e.forced
	}
	e.list = list
	f := e.forced
	t := buildTable(list, f, e.counters, e.routeOpts())
	e.table.Store(t)
	for _, w := range t.unrouted {
		if !e.noted[w] {
			e.noted[w] = true
			fmt.Fprintf(e.cfg.Log, "siteplex: wildcard alias %s is not routed: it would route every name there, and siteplex forwards no name it does not know\n", w)
		}
	}
	e.mu.Unlock()
	e.sup.SetSites(sitesCopy(list), f)
	e.emit(Event{Kind: EventSites})
}

// stateDir is the project's .siteplex folder, or "" without a project.
func (e *Engine) stateDir() string {
	if e.cfg.Project == nil {
		return ""
	}
	return e.cfg.Project.StateDir()
}

// Wait blocks until the engine has been closed and returns the error that
// stopped it (nil after a clean Close).
func (e *Engine) Wait() error {
	<-e.done
	return e.waitErr
}

// Close shuts the engine down gracefully: it stops accepting, lets running
// requests finish (until ctx ends), stops every process and removes
// engine.json. Subscribers' channels are closed. It is safe to call twice.
func (e *Engine) Close(ctx context.Context) error {
	e.closeOnce.Do(func() {
		close(e.closing)
		e.mu.Lock()
		servers := append([]*http.Server(nil), e.servers...)
		started := e.started && e.cancel != nil
		e.mu.Unlock()
		var errs []error
		// Running requests get a few seconds to finish; long streams and
		// requests still waiting for a process are cut after that.
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		for _, srv := range servers {
			if err := srv.Shutdown(sctx); err != nil {
				srv.Close()
			}
		}
		cancel()
		if started {
			e.cancel() // ends the probes
		}
		e.probes.close()
		if err := e.sup.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stopping processes: %w", err))
		}
		if started {
			e.cancel()
			e.bg.Wait()
			e.removeEngineFile()
		}
		e.tr.CloseIdleConnections()
		e.subMu.Lock()
		for id, sub := range e.subs {
			close(sub.ch)
			delete(e.subs, id)
		}
		e.wanted.Store(0)
		e.subsClosed = true
		e.subMu.Unlock()
		e.closeErr = errors.Join(errs...)
		close(e.done)
	})
	return e.closeErr
}

// Addrs returns the bound listen addresses with their real ports.
func (e *Engine) Addrs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.addrs...)
}

// Token is the control API's bearer token (also in engine.json).
func (e *Engine) Token() string { return e.token }

// Sites returns the current site list (with Forced set for the engine's
// forced site).
func (e *Engine) Sites() []sites.Site {
	e.mu.Lock()
	defer e.mu.Unlock()
	return sitesCopy(e.list)
}

// Status returns a snapshot: listen addresses, mode, forced site and every
// routable site's process state and request count.
func (e *Engine) Status() Status {
	e.mu.Lock()
	st := Status{PID: os.Getpid(), Listen: append([]string{}, e.addrs...), HTTPS: append([]string{}, e.httpsAddrs...),
		Mode: e.cfg.Mode, ForcedSiteID: e.forced}
	list := e.list
	e.mu.Unlock()
	st.Preload = e.sup.Preload()
	st.SitesError = e.sitesError()
	byslug := map[string]SiteStatus{}
	for _, s := range e.sup.Statuses() {
		byslug[s.Slug] = s
	}
	t := e.table.Load()
	st.Sites = []SiteStatus{}
	for i := range list {
		s := &list[i]
		rt := t.bySlug[s.Slug]
		if rt == nil {
			continue
		}
		ss, ok := byslug[s.Slug]
		if !ok {
			ss = SiteStatus{State: Stopped}
		}
		ss.ID, ss.Slug, ss.Domain = s.ID, s.Slug, s.Domain
		if ss.State == "" {
			ss.State = Stopped
		}
		ss.Requests = rt.requests.Load()
		ss.Identity = e.identityOf(s.Slug)
		st.Sites = append(st.Sites, ss)
	}
	return st
}

// subscriber is one Subscribe call: its channel and the kinds it wants
// (a bit per EventKind).
type subscriber struct {
	ch    chan Event
	kinds uint32
}

// Subscribe returns a buffered channel of events of the given kinds (all
// kinds when none is given) and a function that ends the subscription. A
// subscriber that does not keep up loses events; the engine never waits
// for it. The channel is closed by cancel or Close.
func (e *Engine) Subscribe(kinds ...EventKind) (<-chan Event, func()) {
	mask := ^uint32(0)
	if len(kinds) > 0 {
		mask = 0
		for _, k := range kinds {
			mask |= 1 << uint(k)
		}
	}
	ch := make(chan Event, 1024)
	e.subMu.Lock()
	if e.subsClosed {
		e.subMu.Unlock()
		close(ch)
		return ch, func() {}
	}
	id := e.nextSub
	e.nextSub++
	e.subs[id] = subscriber{ch: ch, kinds: mask}
	e.wanted.Store(e.wanted.Load() | mask)
	e.subMu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			e.subMu.Lock()
			if sub, ok := e.subs[id]; ok {
				delete(e.subs, id)
				close(sub.ch)
				var w uint32
				for _, s := range e.subs {
					w |= s.kinds
				}
				e.wanted.Store(w)
			}
			e.subMu.Unlock()
		})
	}
}

// supervisorEvent passes the supervisor's events on to the subscribers.
func (e *Engine) supervisorEvent(ev supervisor.Event) {
	switch ev.Kind {
	case supervisor.EventState:
		e.emit(Event{Kind: EventState, Site: ev.Site})
		e.onStateEvent(ev.Site)
	case supervisor.EventLog:
		e.emit(Event{Kind: EventLog, Log: ev.Log})
	case supervisor.EventError:
		e.emit(Event{Kind: EventError, Err: ev.Err})
	}
}

// emit sends ev to every subscriber that wants its kind and has room for
// it.
func (e *Engine) emit(ev Event) {
	bit := uint32(1) << uint(ev.Kind)
	if e.wanted.Load()&bit == 0 {
		return
	}
	if ev.Kind == EventState {
		// The supervisor does not count requests; the routing table does.
		if t := e.table.Load(); t != nil {
			if rt := t.bySlug[ev.Site.Slug]; rt != nil {
				ev.Site.Requests = rt.requests.Load()
			}
		}
		ev.Site.Identity = e.identityOf(ev.Site.Slug)
	}
	e.subMu.RLock()
	for _, sub := range e.subs {
		if sub.kinds&bit == 0 {
			continue
		}
		select {
		case sub.ch <- ev:
		default:
		}
	}
	e.subMu.RUnlock()
}

// record keeps a request record and publishes it.
func (e *Engine) record(rr RequestRecord) {
	e.reqMu.Lock()
	e.reqs[e.reqN%maxRequests] = rr
	e.reqN++
	e.reqMu.Unlock()
	e.emit(Event{Kind: EventRequest, Request: rr})
}

// Requests returns up to the last n request records, oldest first (n <= 0:
// all that are kept, at most 1,000).
func (e *Engine) Requests(n int) []RequestRecord {
	e.reqMu.Lock()
	defer e.reqMu.Unlock()
	have := min(e.reqN, maxRequests)
	if n <= 0 || n > have {
		n = have
	}
	out := make([]RequestRecord, 0, n)
	for i := e.reqN - n; i < e.reqN; i++ {
		out = append(out, e.reqs[i%maxRequests])
	}
	return out
}

// Logs returns up to the last n output lines of a site's process.
func (e *Engine) Logs(slug string, n int) []LogLine { return e.sup.Logs(slug, n) }

// findSite returns the site a key (slug, id, domain) names, or a usage
// error listing close matches.
func (e *Engine) findSite(key string) (sites.Site, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := sites.Find(e.list, key)
	if !ok {
		return sites.Site{}, sites.UnknownSiteError(e.list, key)
	}
	return *s, nil
}

// StartSite starts a site's process now (instead of on its first request).
func (e *Engine) StartSite(ctx context.Context, slug string) error {
	s, err := e.findSite(slug)
	if err != nil {
		return err
	}
	return e.sup.Start(ctx, s.Slug)
}

// StopSite stops a site's process; its next request starts it again.
func (e *Engine) StopSite(ctx context.Context, slug string) error {
	s, err := e.findSite(slug)
	if err != nil {
		return err
	}
	return e.sup.Stop(ctx, s.Slug)
}

// RestartSite restarts a site's process; requests meanwhile wait.
func (e *Engine) RestartSite(ctx context.Context, slug string) error {
	s, err := e.findSite(slug)
	if err != nil {
		return err
	}
	return e.sup.Restart(ctx, s.Slug)
}

// Use makes siteID the forced site (0 clears it). In per-site mode
// localhost switches at once and no process restarts; in single mode the
// supervisor restarts the shared process while requests wait. Use does not
// write the env file: that is the caller's job.
func (e *Engine) Use(ctx context.Context, siteID int64) error {
	if siteID != 0 {
		e.mu.Lock()
		found := false
		for i := range e.list {
			if e.list[i].ID == siteID {
				found = true
				break
			}
		}
		list := e.list
		e.mu.Unlock()
		if !found {
			return sites.UnknownSiteError(list, fmt.Sprint(siteID))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.apply(nil, &siteID)
	return nil
}

// Reload re-reads the sites now and applies them, even when unchanged.
func (e *Engine) Reload(ctx context.Context) error {
	if e.cfg.LoadSites == nil {
		e.apply(nil, nil)
		return nil
	}
	list, err := e.cfg.LoadSites(ctx)
	if err != nil {
		err = fmt.Errorf("loading sites: %w", err)
		e.noteLoad(err)
		e.emit(Event{Kind: EventError, Err: err})
		return err
	}
	e.noteLoad(nil)
	e.mu.Lock()
	e.readOnce = true
	e.loaded = list
	e.mu.Unlock()
	e.apply(sitesCopy(list), nil)
	return nil
}
