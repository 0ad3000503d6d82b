package devproxy

// The request path. Every request the engine serves comes through
// ServeHTTP on net/http's server; a request for a site goes to the site's
// process through one httputil.ReverseProxy and one http.Transport. No
// byte of HTTP is parsed or written by hand here.
//
// The rules this file keeps are written down in docs/engine.md:
// "Routing", "Forwarding", "What siteplex refuses" and "Nothing runs
// twice".

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/siteplex/siteplex/sites/django"
)

// limits are the server's bounds on clients (docs/engine.md, "What
// siteplex refuses"); New sets defaultLimits, tests shorten them.
type limits struct {
	// readHeader bounds how long a client may take to send a request's
	// head.
	readHeader time.Duration
	// keepAlive closes a client connection idle for this long.
	keepAlive time.Duration
	// maxHeaderBytes bounds a request's head (net/http answers 431 beyond).
	maxHeaderBytes int
	// bodyStall ends a request whose body sends nothing for this long
	// (408), and is the grace before bodyMinRate applies.
	bodyStall time.Duration
	// bodyMinRate is the slowest average a request body may arrive at
	// once bodyStall has passed, in bytes per second.
	bodyMinRate int64
}

func defaultLimits() limits {
	return limits{readHeader: 10 * time.Second, keepAlive: 2 * time.Minute, maxHeaderBytes: 64 << 10,
		bodyStall: 30 * time.Second, bodyMinRate: 1 << 10}
}

// idleSettle bounds backendConn.awaitIdle.
const idleSettle = 20 * time.Millisecond

// maxAttempts bounds how often one request asks the supervisor for a
// process and tries it (a process that just died is being restarted).
const maxAttempts = 40

// errUnsolicited is the error of an attempt whose answer began with bytes
// the backend sent before it got the request.
var errUnsolicited = errors.New("the site's process sent an answer before it got the request (bytes left over from an earlier answer): siteplex dropped the connection")

// errNoResend refuses to write a request to a backend a time too many
// (see exchange.mayWrite).
var errNoResend = errors.New("siteplex does not send this request again: a process may already have run it")

// acquireFunc hands out a site's backend address, starting its process when
// needed; release must be called once the request (or WebSocket) is done.
type acquireFunc func(ctx context.Context, r *siteRoute) (addr string, release func(), err error)

// newTransport is the one Transport every proxied request shares: a
// keep-alive pool to the loopback backends sized for a developer's
// browser tabs and a load test, no compression, no proxy from the
// environment (a dev proxy must never forward to HTTP_PROXY). Its
// connections are backendConns, which let the exchange see what reached a
// process.
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &backendConn{Conn: c}, nil
		},
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    128,
		IdleConnTimeout:        30 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		DisableCompression:     true,
		ForceAttemptHTTP2:      false,
	}
}

// newReverseProxy builds the ReverseProxy every site shares. Its hooks
// find the request's exchange in the request's context; Rewrite and
// ModifyResponse are the one place where requests and answers change on
// their way through.
func (e *Engine) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        rewrite,
		ModifyResponse: modifyResponse,
		ErrorHandler:   proxyError,
		Transport:      e.tr,
		// FlushInterval 0: ReverseProxy flushes every write of an answer
		// without a Content-Length (runserver's StreamingHttpResponse)
		// and of text/event-stream, so those reach the browser as they
		// come; an answer of known length goes out as it is copied. (-1
		// for every answer would start a timer goroutine and flush the
		// head on its own for each one.)
		FlushInterval: 0,
		BufferPool:    e.bufs,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
}

// rewrite makes the request that goes to the process (docs/engine.md,
// "Forwarding"): the process's address, the client's own Host, siteplex's
// X-Forwarded-* and nothing of the client's. ReverseProxy has already
// removed the hop-by-hop headers and the client's Forwarded,
// X-Forwarded-For, -Host and -Proto.
func rewrite(pr *httputil.ProxyRequest) {
	x := exchangeOf(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = x.addr
	pr.Out.Host = pr.In.Host
	h := pr.Out.Header
	for k := range h {
		// siteplex is the first hop: nothing a client claims about
		// earlier hops is passed on, nor any of siteplex's own headers
		// to the process (the overlay's site and secret).
		if strings.HasPrefix(k, "X-Forwarded-") || k == "X-Real-Ip" || strings.HasPrefix(k, "X-Siteplex-") {
			delete(h, k)
		}
	}
	// X-Forwarded-For: the client's address; -Host: its Host;
	// -Proto: http, or https when the client came over TLS.
	pr.SetXForwarded()
	if r := x.route; r != nil {
		if r.upstream != "" {
			rewriteUpstream(pr, r.upstream) // hostrewrite.go
		}
		if r.siteHeader != nil && x.secret != nil {
			// Single mode: the request's site, for the overlay
			// (docs/django.md, "Single mode").
			h[django.HeaderSite] = r.siteHeader
			h[django.HeaderSecret] = x.secret
		}
	}
	if pr.In.Method == http.MethodHead {
		// Django's runserver (and others) send a body after a HEAD
		// answer; a connection that carried a HEAD is never reused, so
		// those bytes cannot become the next request's answer.
		pr.Out.Close = true
	}
}

// modifyResponse checks an answer before any of it reaches the client.
func modifyResponse(resp *http.Response) error {
	x := exchangeOf(resp.Request.Context())
	if x == nil {
		return nil
	}
	if x.unsolicited.Load() {
		return errUnsolicited
	}
	if r := x.route; r.upstream != "" {
		rewriteAnswer(resp.Header, r.upstream, x.host, r.site.LocalDomain, x.tls) // hostrewrite.go
	}
	return nil
}

// proxyError keeps a failed attempt's error on its exchange for serveSite,
// which decides whether to send the request again or to answer with the
// error page.
func proxyError(w http.ResponseWriter, r *http.Request, err error) {
	x := exchangeOf(r.Context())
	if x == nil {
		http.Error(w, "siteplex: bad gateway", http.StatusBadGateway)
		return
	}
	x.err = err
	x.died = x.connDied(err)
	if x.unsolicited.Swap(false) {
		// The connection was dropped before the request's own answer.
		x.err, x.died = errUnsolicited, true
	}
}

// ServeHTTP routes one request: to a site's process, the index page and
// API, or a short 404. It never forwards a request for a host that is not
// a site.
func (e *Engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !validHost(r.Host) {
		http.Error(w, fmt.Sprintf("siteplex: the Host %q is not hostname[:port] or [IPv6]:port", r.Host), http.StatusBadRequest)
		return
	}
	if r.Method == http.MethodConnect {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		http.Error(w, "siteplex: CONNECT is refused (siteplex is not a forward proxy)", http.StatusMethodNotAllowed)
		return
	}
	t := e.table.Load()
	kind, rt := t.lookup(r.Host)
	if len(r.RequestURI) > 0 && r.RequestURI[0] != '/' && r.RequestURI != "*" && kind != toSite {
		// An absolute-form target for a host that is not a site.
		http.Error(w, "siteplex: absolute-form requests for other hosts are refused (siteplex is not a forward proxy)", http.StatusForbidden)
		return
	}
	switch kind {
	case toSite:
		if r.TLS == nil && e.redirectHTTPS(w, r) {
			return
		}
		e.serveSite(w, r, rt)
	case toLocal:
		if strings.Contains(r.URL.RawQuery, cookieName+"=") {
			e.serveSelect(w, r, t)
			return
		}
		if rt = t.localRoute(r); rt != nil {
			e.serveSite(w, r, rt)
			return
		}
		e.serveIndex(w, r, t)
	case toIndex:
		e.serveIndex(w, r, t)
	case toForeign:
		e.serveForeign(w, r)
	}
}

// localRoute picks the site for a localhost request: the cookie's site,
// else the forced site; nil means the index.
func (t *routeTable) localRoute(r *http.Request) *siteRoute {
	if len(r.Header["Cookie"]) > 0 {
		if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
			if rt := t.bySlug[c.Value]; rt != nil {
				return rt
			}
		}
	}
	return t.forcedRoute
}

// serveSelect handles ?siteplex-site=SLUG on localhost: it sets (or, when
// empty, clears) the cookie and redirects to the same URL without the
// parameter.
func (e *Engine) serveSelect(w http.ResponseWriter, r *http.Request, t *routeTable) {
	q := r.URL.Query()
	slug := strings.ToLower(strings.TrimSpace(q.Get(cookieName)))
	q.Del(cookieName)
	u := *r.URL
	u.RawQuery = q.Encode()
	u.Scheme, u.Host = "", ""
	target := u.RequestURI()
	if slug == "" {
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	if t.bySlug[slug] == nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "siteplex: no routable site with slug %q; see %s for the list\n", slug, e.indexURL(r))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: slug, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, target, http.StatusFound)
}

// exchange is one client request to a site, over all its attempts. Its
// facts about what reached a process are written by the Transport's
// goroutines (through the trace hooks and backendConn) and read by
// serveSite between attempts.
type exchange struct {
	route *siteRoute
	// host is the Host the client sent, tls whether it came over TLS
	// (for the answer's Location and cookies under Host rewriting).
	host string
	tls  bool
	// secret is the overlay's secret as a header value (nil: none is
	// sent).
	secret []string
	// addr is the backend of the current attempt; rewrite reads it.
	addr string
	// idempotent: a GET, HEAD, OPTIONS or TRACE (or a request with an
	// Idempotency-Key) without a body, as net/http's Transport judges it.
	idempotent bool
	rec        recorder
	body       *clientBody // nil without a request body
	trace      httptrace.ClientTrace

	// err is the current attempt's error (set by proxyError), died
	// whether its connection could not be made or broke.
	err  error
	died bool

	// writes counts the attempts that wrote at least one byte of the
	// request to a backend.
	writes atomic.Int32
	// answered is set once any attempt got a first byte of its answer.
	answered atomic.Bool
	// unsolicited is set when the current attempt's answer began with
	// bytes read before the request was written.
	unsolicited atomic.Bool
	// conn is the connection of the current attempt (the last GotConn).
	conn atomic.Pointer[backendConn]
}

type exchangeKey struct{}

// exchangeOf returns the exchange a request belongs to, or nil.
func exchangeOf(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// gotConn is the trace hook for each connection an attempt gets (the
// Transport's own retries included): the connection now carries x. A
// kept-alive connection is first given the moment it needs to show
// whether bytes are left on it (awaitIdle).
func (x *exchange) gotConn(info httptrace.GotConnInfo) {
	c, ok := info.Conn.(*backendConn)
	if !ok {
		return
	}
	if info.Reused {
		c.awaitIdle()
	}
	x.conn.Store(c)
	c.arm(x)
}

// gotFirstByte is the trace hook for the first byte of an answer. An
// answer that begins with bytes read before the request was written
// cannot be this request's: the process sent them earlier (a body after
// a 204, 304 or HEAD answer, bytes after an answer). The connection is
// closed at once, before the Transport could give it to another request,
// and the attempt fails in modifyResponse as one whose connection died
// before its answer.
func (x *exchange) gotFirstByte() {
	c := x.conn.Load()
	if c != nil && !c.answerIsFresh() {
		x.unsolicited.Store(true)
		c.Conn.Close()
		return
	}
	x.answered.Store(true)
	if c != nil {
		c.answerBegan()
	}
}

// mayWrite says whether an attempt may write the request to a backend
// (docs/engine.md, "Nothing runs twice"): the first time, yes; a second
// time only for an idempotent request none of whose attempts got a byte
// of an answer (its connection died first); never a third time.
func (x *exchange) mayWrite() bool {
	switch x.writes.Load() {
	case 0:
		return true
	case 1:
		return x.idempotent && !x.answered.Load()
	}
	return false
}

// mayResend says whether serveSite may try the failed attempt again: the
// client has nothing of an answer, the request body is unread, the
// connection could not be made or died, and mayWrite allows it.
func (x *exchange) mayResend() bool {
	return x.rec.status == 0 && x.rec.bytes == 0 && x.died &&
		(x.body == nil || !x.body.touched.Load()) && x.mayWrite()
}

// connDied reports whether err is a connection that could not be made, or
// the attempt's connection broke (EOF or an error reading or writing it).
func (x *exchange) connDied(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	if errors.Is(err, errNoResend) {
		return false
	}
	c := x.conn.Load()
	return c != nil && c.broken.Load()
}

// isIdempotent mirrors net/http's rule for requests its Transport may
// send again: GET, HEAD, OPTIONS and TRACE, or any method with an
// Idempotency-Key or X-Idempotency-Key header, and no body.
func isIdempotent(r *http.Request) bool {
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return r.Header["Idempotency-Key"] != nil || r.Header["X-Idempotency-Key"] != nil
}

// serveSite proxies r to the site's process, starting it when needed, and
// records the request. An attempt that fails before the client got
// anything is tried again when mayResend allows it, with the process the
// supervisor has then (a process that died is restarted meanwhile).
func (e *Engine) serveSite(w http.ResponseWriter, r *http.Request, rt *siteRoute) {
	start := time.Now()
	rt.requests.Add(1)
	x := &exchange{route: rt, host: r.Host, tls: r.TLS != nil, idempotent: isIdempotent(r), rec: recorder{w: w}}
	if s := e.ident.Load(); s != nil && rt.siteHeader != nil {
		x.secret = s.secretHeader
	}
	x.trace = httptrace.ClientTrace{GotConn: x.gotConn, GotFirstResponseByte: x.gotFirstByte}
	if r.Body != nil && r.Body != http.NoBody {
		x.body = &clientBody{rc: r.Body, ctl: http.NewResponseController(w), start: start,
			stall: e.lim.bodyStall, minRate: e.lim.bodyMinRate}
		r.Body = x.body
	}
	ctx := httptrace.WithClientTrace(context.WithValue(r.Context(), exchangeKey{}, x), &x.trace)
	r = r.WithContext(ctx)
	// Deferred, so that an answer cut short (ReverseProxy panics with
	// http.ErrAbortHandler) is recorded too.
	defer e.finish(x, r, start)
	for attempt := 1; ; attempt++ {
		addr, release, err := e.acquire(ctx, rt)
		if err != nil {
			if ctx.Err() == nil {
				e.serveBackendError(&x.rec, r, rt, err)
			}
			return
		}
		x.addr, x.err, x.died = addr, nil, false
		e.forwardOnce(x, r, release)
		switch {
		case x.err == nil:
			if x.rec.status == 0 && r.Header.Get("Upgrade") != "" {
				// ReverseProxy wrote the 101 on the hijacked connection.
				x.rec.status = http.StatusSwitchingProtocols
			}
			return
		case x.body != nil && x.body.stalled():
			// (net/http has cancelled the request's context by now.)
			if x.rec.status == 0 {
				x.rec.Header().Set("Connection", "close")
				http.Error(&x.rec, fmt.Sprintf("siteplex: the request body sent nothing for %s, or less than %d bytes a second", e.lim.bodyStall, e.lim.bodyMinRate), http.StatusRequestTimeout)
			}
			return
		case ctx.Err() != nil:
			return
		case !x.mayResend() || attempt == maxAttempts:
			e.serveBackendError(&x.rec, r, rt, x.err)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(10+10*attempt) * time.Millisecond):
		}
	}
}

// forwardOnce runs the ReverseProxy once; release runs even when
// ReverseProxy aborts the handler (http.ErrAbortHandler on a broken
// answer body).
func (e *Engine) forwardOnce(x *exchange, r *http.Request, release func()) {
	defer release()
	if x.body != nil {
		x.body.open()
	}
	e.rp.ServeHTTP(&x.rec, r)
}

// finish records a proxied request.
func (e *Engine) finish(x *exchange, r *http.Request, start time.Time) {
	if x.body != nil {
		x.body.Close()
	}
	status := x.rec.status
	if status == 0 {
		// The client went away before an answer (nginx's 499).
		status = 499
	}
	e.record(RequestRecord{Time: start, Site: x.route.site.Slug, Method: r.Method, Path: r.URL.Path,
		Status: status, Duration: time.Since(start), Bytes: x.rec.bytes})
}

// backendConn is one connection to a process, as the Transport sees it.
// It tells the exchange it carries whether the request reached the
// process and whether the answer came after it. The Transport uses a
// connection for one request at a time; gotConn arms it for the next.
type backendConn struct {
	net.Conn
	// reads counts Read calls that returned data.
	reads atomic.Uint64
	// readStarts and readEnds count Read calls begun and returned.
	readStarts, readEnds atomic.Uint64
	// broken is set once a Read or Write failed (EOF included) or the
	// connection was closed.
	broken atomic.Bool
	// closed is set by Close.
	closed atomic.Bool
	// cur is the exchange of the request on the connection now; armed
	// says its first write is still to come; wrote that it began, when
	// reads was readsAtWrite.
	cur          atomic.Pointer[exchange]
	armed        atomic.Bool
	wrote        atomic.Bool
	readsAtWrite atomic.Uint64
	// counted is the exchange whose writes this connection's request was
	// counted in, until an answer began (see unwrite).
	counted atomic.Pointer[exchange]
}

// arm makes x the exchange of the connection's next request.
func (c *backendConn) arm(x *exchange) {
	c.wrote.Store(false)
	c.cur.Store(x)
	c.armed.Store(true)
}

// answerIsFresh reports whether the current request was written and data
// has been read since: an answer can only begin after its request.
func (c *backendConn) answerIsFresh() bool {
	return c.wrote.Load() && c.reads.Load() > c.readsAtWrite.Load()
}

func (c *backendConn) Read(p []byte) (int, error) {
	c.readStarts.Add(1)
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.reads.Add(1)
	}
	c.readEnds.Add(1)
	if err != nil {
		c.fail(err)
	}
	return n, err
}

// fail marks the connection broken. For a request without a body, a
// reset takes back the count of its write: TCP answers with a reset when
// the process's socket was closed with the request unread, or was already
// closed when it arrived (a process killed under it), so no process read
// it. (A process that read the whole head closes with nothing unread,
// which is an orderly EOF, and the count stays. With a body, a process may
// act on the head and close without reading the rest: the count stays.)
func (c *backendConn) fail(err error) {
	c.broken.Store(true)
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		if x := c.counted.Load(); x != nil && x.body == nil && c.counted.CompareAndSwap(x, nil) {
			x.writes.Add(-1)
		}
	}
}

// Close closes the connection.
func (c *backendConn) Close() error {
	c.closed.Store(true)
	c.broken.Store(true)
	return c.Conn.Close()
}

// awaitIdle waits, before a kept-alive connection carries another
// request, until the Transport's reader is blocked reading it (so nothing
// of an earlier answer is left in its buffer) or has closed it (it found
// bytes nobody asked for: net/http closes an idle connection that
// receives any). The reader gets there microseconds after an answer ends;
// awaitIdle gives up after idleSettle and lets the first-byte check
// (gotFirstByte) judge.
func (c *backendConn) awaitIdle() {
	settled := func() bool { return c.closed.Load() || c.readStarts.Load() > c.readEnds.Load() }
	if settled() {
		return
	}
	deadline := time.Now().Add(idleSettle)
	for i := 0; !settled(); i++ {
		if i < 100 {
			runtime.Gosched()
			continue
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(20 * time.Microsecond)
	}
}

// answerBegan ends fail's taking back: the process has read the request.
func (c *backendConn) answerBegan() { c.counted.Store(nil) }

// Write writes p; the first write of a request asks its exchange whether
// it may reach a process at all (mayWrite) and counts it.
func (c *backendConn) Write(p []byte) (int, error) {
	if !c.armed.Load() || !c.armed.CompareAndSwap(true, false) {
		n, err := c.Conn.Write(p)
		if err != nil {
			c.fail(err)
		}
		return n, err
	}
	x := c.cur.Load()
	if x != nil && !x.mayWrite() {
		// Nothing is written; the Transport drops this connection.
		return 0, errNoResend
	}
	// A connection the process had closed before this write (its EOF or
	// reset was read already) cannot deliver the request to it.
	closedBefore := c.broken.Load()
	c.readsAtWrite.Store(c.reads.Load())
	c.wrote.Store(true)
	c.counted.Store(nil)
	if x != nil && !closedBefore {
		x.writes.Add(1)
		c.counted.Store(x)
	}
	n, err := c.Conn.Write(p)
	if n == 0 && x != nil {
		if c.counted.CompareAndSwap(x, nil) {
			x.writes.Add(-1) // nothing written
		}
	}
	if err != nil {
		c.fail(err)
	}
	return n, err
}

// clientBody is a client's request body on its way to a process. It
// bounds how slowly the body may arrive (limits.bodyStall and bodyMinRate, through
// the client connection's read deadline) and remembers whether any of it
// was read: only an unread body can be sent again.
type clientBody struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController
	start   time.Time
	stall   time.Duration
	minRate int64

	touched atomic.Bool // some of it was read

	// mu guards the fields below, and orders the
	// deadlines set through ctl: none may be set once the handler
	// returned.
	mu       sync.Mutex
	n        int64     // bytes read
	done     bool      // EOF or an error was read
	complete bool      // EOF was read
	live     bool      // between open and Close
	deadline time.Time // the read deadline set last
	timedOut bool      // a read hit it
}

// stalled reports whether the body missed its deadline. (net/http cancels
// the request when the read fails, which the attempt may see first.)
func (b *clientBody) stalled() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timedOut || !b.complete && !b.deadline.IsZero() && time.Now().After(b.deadline)
}

// open makes the body readable for one attempt. ReverseProxy closes it at
// the end of each attempt (the Transport may still hold it).
func (b *clientBody) open() {
	b.mu.Lock()
	b.live = true
	b.mu.Unlock()
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if !b.live {
		b.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	if !b.done {
		now := time.Now()
		d := now.Add(b.stall)
		if rate := b.start.Add(b.stall + time.Duration(b.n/b.minRate)*time.Second); rate.Before(d) {
			d = rate
		}
		b.deadline = d
		_ = b.ctl.SetReadDeadline(d)
	}
	b.mu.Unlock()

	n, err := b.rc.Read(p)

	b.mu.Lock()
	defer b.mu.Unlock()
	if n > 0 {
		b.touched.Store(true)
		b.n += int64(n)
	}
	if err != nil && !b.done {
		b.done = true
		b.complete = err == io.EOF
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			b.timedOut = true
		}
		if b.live {
			// The server's own watch for a client that leaves reads the
			// connection next; it must not inherit the deadline.
			_ = b.ctl.SetReadDeadline(time.Time{})
		}
	}
	return n, err
}

// Close ends the current attempt's use of the body; the body itself stays
// open for a later attempt (net/http's server closes it).
func (b *clientBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.live && !b.done && b.touched.Load() {
		// A partly read body: lift the deadline for the rest of the
		// handler (the server discards what is left with its own bound).
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	b.live = false
	return nil
}

// recorder wraps the client's ResponseWriter to record status and bytes.
// Unwrap lets http.NewResponseController (used by ReverseProxy to flush
// and hijack) reach the real writer.
type recorder struct {
	w      http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) Header() http.Header { return r.w.Header() }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.w.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.w.Write(p)
	r.bytes += int64(n)
	return n, err
}

// Unwrap returns the wrapped writer (for http.ResponseController).
func (r *recorder) Unwrap() http.ResponseWriter { return r.w }

// bufferPool lends the 32 KiB copy buffers ReverseProxy would otherwise
// allocate per request.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }
