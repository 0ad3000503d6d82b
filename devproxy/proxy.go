package devproxy

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"time"
)

// acquireFunc hands out a site's backend address, starting its process when
// needed; release must be called once the request (or WebSocket) is done.
type acquireFunc func(ctx context.Context, r *siteRoute) (addr string, release func(), err error)

// newTransport is the one Transport every proxied request shares: a large
// keep-alive pool to the loopback backends, no compression, no proxy from
// the environment (a dev proxy must never forward to HTTP_PROXY).
func newTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		MaxIdleConns:          2048,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
}

// bufferPool lends the 32 KiB copy buffers ReverseProxy would otherwise
// allocate per request.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *(b.p.Get().(*[]byte)) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

// getp and putp lend a buffer without allocating (for the fast path).
func (b *bufferPool) getp() *[]byte  { return b.p.Get().(*[]byte) }
func (b *bufferPool) putp(x *[]byte) { b.p.Put(x) }

// newReverseProxy builds the ReverseProxy. The handler puts the backend
// address in the inbound request's URL before calling it, so Rewrite only
// sets the scheme, keeps the inbound Host and adds X-Forwarded-*.
// Streaming responses (no Content-Length, text/event-stream) are flushed
// at once by ReverseProxy itself; errors are left on the recorder for the
// handler to retry or render.
func newReverseProxy(tr http.RoundTripper, bufs *bufferPool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.URL.Host
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:  tr,
		BufferPool: bufs,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if rec, ok := w.(*recorder); ok {
				rec.proxyErr = err
				return
			}
			http.Error(w, "siteplex: bad gateway", http.StatusBadGateway)
		},
	}
}

// recorder wraps the client's ResponseWriter to record status and bytes.
// Unwrap lets http.NewResponseController (used by ReverseProxy to flush
// and hijack) reach the real writer.
type recorder struct {
	w        http.ResponseWriter
	status   int
	bytes    int64
	proxyErr error
}

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

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

// Flush flushes the wrapped writer when it can.
func (r *recorder) Flush() {
	if f, ok := r.w.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(r.w).Flush()
}

// guardBody keeps a request body open when the Transport closes it after a
// failed dial, and remembers whether any of it was read: an unread body
// makes a retry against a restarted process safe.
type guardBody struct {
	rc   io.ReadCloser
	read bool
}

func (g *guardBody) Read(p []byte) (int, error) {
	n, err := g.rc.Read(p)
	if n > 0 {
		g.read = true
	}
	return n, err
}

func (g *guardBody) Close() error { return nil }

// isDialError reports whether err means the request can be sent again to
// a restarted process: the connection was refused or could not be made, or
// a GET/HEAD lost its process before any answer (*backendGone).
func isDialError(err error) bool {
	var op *net.OpError
	var gone *backendGone
	return errors.As(err, &op) && op.Op == "dial" || errors.As(err, &gone)
}

// maxDialRetries bounds retries after a dial failure (a process that just
// died and is being restarted by the supervisor).
const maxDialRetries = 40

// serveSite proxies r to the site's process, starting it when needed, and
// records the request.
func (e *Engine) serveSite(w http.ResponseWriter, r *http.Request, rt *siteRoute) {
	start := time.Now()
	rec := recorderPool.Get().(*recorder)
	*rec = recorder{w: w}
	var guard *guardBody
	if r.Body != nil && r.Body != http.NoBody {
		guard = &guardBody{rc: r.Body}
		r.Body = guard
	}
	ctx := r.Context()
	path := r.URL.Path
	fast := fastEligible(r)
	goneRetries := 0
	for attempt := 0; ; attempt++ {
		addr, release, err := e.acquire(ctx, rt)
		if err != nil {
			if ctx.Err() == nil {
				e.serveBackendError(rec, r, rt, err)
			}
			break
		}
		if fast {
			e.forwardFast(rec, r, addr, release)
		} else {
			r.URL.Host = addr
			e.forward(rec, r, release)
		}
		if rec.proxyErr == nil {
			if rec.status == 0 && r.Header.Get("Upgrade") != "" {
				rec.status = http.StatusSwitchingProtocols
			}
			break
		}
		if ctx.Err() != nil {
			break
		}
		// A request that reached a process which then died is resent once
		// (a process that dies on every such request must not be
		// restarted in a loop); one that never reached a process is resent
		// until the supervisor has a live one.
		var gone *backendGone
		if errors.As(rec.proxyErr, &gone) {
			goneRetries++
		}
		retry := isDialError(rec.proxyErr) && rec.status == 0 && (guard == nil || !guard.read) &&
			attempt < maxDialRetries && goneRetries <= 1
		if !retry {
			e.serveBackendError(rec, r, rt, rec.proxyErr)
			break
		}
		rec.proxyErr = nil
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(20+10*attempt) * time.Millisecond):
		}
	}
	e.finish(rec, r, rt, start, path)
}

// forward runs the ReverseProxy once; release runs even when ReverseProxy
// aborts the handler (http.ErrAbortHandler on a broken response body).
func (e *Engine) forward(rec *recorder, r *http.Request, release func()) {
	defer release()
	e.rp.ServeHTTP(rec, r)
}

// forwardFast runs the fast path once; errors are left on rec like the
// ReverseProxy path's.
func (e *Engine) forwardFast(rec *recorder, r *http.Request, addr string, release func()) {
	defer release()
	if err := e.fastForward(rec, r, addr); err != nil {
		rec.proxyErr = err
	}
}

// finish records a proxied request and returns the recorder to its pool.
func (e *Engine) finish(rec *recorder, r *http.Request, rt *siteRoute, start time.Time, path string) {
	status := rec.status
	if status == 0 {
		// The client went away before an answer (nginx's 499).
		status = 499
	}
	rt.requests.Add(1)
	e.record(RequestRecord{Time: start, Site: rt.site.Slug, Method: r.Method, Path: path,
		Status: status, Duration: time.Since(start), Bytes: rec.bytes})
	*rec = recorder{}
	recorderPool.Put(rec)
}

// serveBackendError answers when a site's process cannot take the request:
// a crash loop in backoff or a failed boot get a 502 page with the last
// lines of the process's output.
func (e *Engine) serveBackendError(w http.ResponseWriter, r *http.Request, rt *siteRoute, err error) {
	if rw, ok := w.(*recorder); ok && rw.status != 0 {
		return // the answer has begun; nothing more can be said
	}
	var (
		title  string
		detail string
		tail   []string
		code   = http.StatusBadGateway
	)
	var be *BackoffError
	var bootErr *BootError
	switch {
	case errors.As(err, &be):
		title = fmt.Sprintf("%s keeps crashing", rt.site.Slug)
		wait := time.Until(be.Until).Round(time.Second)
		if wait < 0 {
			wait = 0
		}
		detail = fmt.Sprintf("Its process exited before it was ready several times in a row; siteplex tries again in %s, or at once when you change a .py file.", wait)
		tail = be.Tail
		if wait > 0 {
			w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds()+0.999)))
		}
	case errors.As(err, &bootErr):
		title = fmt.Sprintf("%s did not start", rt.site.Slug)
		detail = bootErr.Error()
		tail = bootErr.Tail
	case errors.Is(err, ErrClosed):
		title = "siteplex is shutting down"
		detail = err.Error()
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		title = fmt.Sprintf("%s did not answer in time", rt.site.Slug)
		detail = err.Error()
		code = http.StatusGatewayTimeout
	default:
		title = fmt.Sprintf("%s is not reachable", rt.site.Slug)
		detail = err.Error()
	}
	if len(tail) > 50 {
		tail = tail[len(tail)-50:]
	}
	var b strings.Builder
	b.WriteString("<!doctype html><meta charset=utf-8><title>siteplex: ")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}pre{background:#1e1e1e;color:#eee;padding:1em;overflow:auto}</style>\n<h1>")
	b.WriteString(html.EscapeString(title))
	b.WriteString("</h1>\n<p>")
	b.WriteString(html.EscapeString(detail))
	b.WriteString("</p>\n")
	if len(tail) > 0 {
		fmt.Fprintf(&b, "<h2>Last %d lines of its output</h2>\n<pre>", len(tail))
		for _, l := range tail {
			b.WriteString(html.EscapeString(l))
			b.WriteByte('\n')
		}
		b.WriteString("</pre>\n")
	}
	b.WriteString("<p><a href=\"http://" + IndexHost + "/\">All sites</a></p>\n")
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Siteplex-Error", "1")
	w.WriteHeader(code)
	io.WriteString(w, b.String())
}
