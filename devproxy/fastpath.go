package devproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The fast path forwards the common request — GET or HEAD, no body, no
// upgrade — on the handler's own goroutine over a pooled keep-alive
// connection, writing the request head directly and reading the answer
// with http.ReadResponse. It keeps every behaviour of the ReverseProxy
// path (original Host, X-Forwarded-*, hop-by-hop stripping, streaming with
// immediate flushes, trailers) while skipping the Transport's per-request
// goroutine hand-offs and the request/header clones. Everything else
// (bodies, upgrades, other methods) takes httputil.ReverseProxy.
//
// In front of both sits conn.go's own HTTP/1.1 loop, which serves most
// GET/HEAD requests without net/http at all; this path sees the requests
// it hands over (a site still starting, a backend failure, ...). Both
// share the connection pool below.

// fastIdleTimeout closes pooled backend connections unused for this long.
const fastIdleTimeout = 90 * time.Second

// fastMaxIdle is the most idle connections kept per backend address.
const fastMaxIdle = 512

// backendConn is one pooled connection to a backend.
type backendConn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	lastUsed time.Time
	// rdl is the read deadline the front end (conn.go) last set; zero
	// when none is set.
	rdl time.Time
}

// connPool keeps idle keep-alive connections per backend address.
type connPool struct {
	dialer net.Dialer
	// mu guards idle.
	mu   sync.Mutex
	idle map[string][]*backendConn
}

// newBackendConn wraps a fresh connection to a backend.
func newBackendConn(c net.Conn) *backendConn {
	rw := newHeldIO(c)
	return &backendConn{c: c, br: bufio.NewReaderSize(rw, 16<<10), bw: bufio.NewWriterSize(rw, 8<<10)}
}

func newConnPool() *connPool {
	return &connPool{dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
		idle: map[string][]*backendConn{}}
}

// get returns an idle connection to addr (reused=true) or dials one.
func (p *connPool) get(ctx context.Context, addr string) (bc *backendConn, reused bool, err error) {
	now := time.Now()
	p.mu.Lock()
	for list := p.idle[addr]; len(list) > 0; list = p.idle[addr] {
		bc = list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[addr] = list[:len(list)-1]
		if now.Sub(bc.lastUsed) < fastIdleTimeout {
			p.mu.Unlock()
			return bc, true, nil
		}
		bc.c.Close()
	}
	p.mu.Unlock()
	c, err := p.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return newBackendConn(c), false, nil
}

// put returns a healthy connection to the pool.
func (p *connPool) put(addr string, bc *backendConn) {
	bc.lastUsed = time.Now()
	p.mu.Lock()
	if len(p.idle[addr]) >= fastMaxIdle {
		p.mu.Unlock()
		bc.c.Close()
		return
	}
	p.idle[addr] = append(p.idle[addr], bc)
	p.mu.Unlock()
}

// sweep closes connections idle too long and forgets empty addresses.
func (p *connPool) sweep() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, list := range p.idle {
		keep := list[:0]
		for _, bc := range list {
			if now.Sub(bc.lastUsed) < fastIdleTimeout {
				keep = append(keep, bc)
			} else {
				bc.c.Close()
			}
		}
		clear(list[len(keep):])
		if len(keep) == 0 {
			delete(p.idle, addr)
		} else {
			p.idle[addr] = keep
		}
	}
}

// closeAll closes every idle connection.
func (p *connPool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, list := range p.idle {
		for _, bc := range list {
			bc.c.Close()
		}
		delete(p.idle, addr)
	}
}

// fastEligible reports whether r can take the fast path.
func fastEligible(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		r.ContentLength == 0 && len(r.TransferEncoding) == 0 &&
		r.Header["Upgrade"] == nil && r.Header["Expect"] == nil && r.ProtoMajor == 1
}

// hopHeaders are the hop-by-hop headers a proxy must not forward
// (RFC 9110 §7.6.1), in canonical form.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// isHop reports whether the canonical header key k is hop-by-hop for a
// message whose Connection header lists conn.
func isHop(k string, conn []string) bool {
	for _, h := range hopHeaders {
		if k == h {
			return true
		}
	}
	for _, v := range conn {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f != "" && strings.EqualFold(f, k) {
				return true
			}
		}
	}
	return false
}

// errFastRetry marks a failure on a reused connection before any answer
// arrived: the request may be sent again on a fresh connection.
var errFastRetry = errors.New("reused backend connection failed")

// backendGone wraps a failure of a GET or HEAD before any answer arrived:
// the process died under the request (kill -9, a crash, a restart). The
// request is idempotent and nothing reached the client, so the caller asks
// the supervisor again and resends it.
type backendGone struct{ err error }

func (b *backendGone) Error() string { return b.err.Error() }
func (b *backendGone) Unwrap() error { return b.err }

// fastForward sends r to addr and copies the answer to w. It returns an
// error only when nothing has been written to w yet (so the caller can
// retry or render an error page): a dial failure is a *net.OpError, a
// failure before the answer a *backendGone.
func (e *Engine) fastForward(w *recorder, r *http.Request, addr string) error {
	err := e.fastOnce(w, r, addr, false)
	if errors.Is(err, errFastRetry) {
		// Most likely the process closed an idle connection; resend once
		// on a fresh one.
		err = e.fastOnce(w, r, addr, true)
		if errors.Is(err, errFastRetry) {
			err = &backendGone{err}
		}
	}
	return err
}

// fastOnce is one attempt of fastForward; fresh forces a new connection.
func (e *Engine) fastOnce(w *recorder, r *http.Request, addr string, fresh bool) error {
	ctx := r.Context()
	var (
		bc     *backendConn
		reused bool
		err    error
	)
	if fresh {
		var c net.Conn
		c, err = e.pool.dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			bc = newBackendConn(c)
		}
	} else {
		bc, reused, err = e.pool.get(ctx, addr)
	}
	if err != nil {
		return err
	}
	if !bc.rdl.IsZero() {
		// Left by the front end: this path relies on the context instead.
		bc.rdl = time.Time{}
		_ = bc.c.SetReadDeadline(time.Time{})
	}
	// A client that goes away ends the backend exchange too.
	stop := context.AfterFunc(ctx, func() { _ = bc.c.SetDeadline(time.Unix(1, 0)) })
	keep := false
	defer func() {
		if !stop() || !keep {
			bc.c.Close()
			return
		}
		e.pool.put(addr, bc)
	}()

	writeRequestHead(bc.bw, r)
	if err := bc.bw.Flush(); err != nil {
		if reused {
			return errFastRetry
		}
		return &backendGone{err}
	}
	var resp *http.Response
	for {
		resp, err = http.ReadResponse(bc.br, r)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case reused:
				return errFastRetry
			}
			return &backendGone{err}
		}
		if resp.StatusCode >= 200 {
			break
		}
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// Never asked for (upgrades take the ReverseProxy path).
			return errors.New("the site's process switched protocols without an upgrade request")
		}
		// 1xx informational answers (103 Early Hints) are dropped.
		resp.Body.Close()
	}
	// resp.Body.Close would drain what is left of the body; on a failed
	// copy the connection is closed first so that it cannot block.
	h := w.Header()
	conn := resp.Header["Connection"]
	for k, vv := range resp.Header {
		if isHop(k, conn) {
			continue
		}
		h[k] = vv
	}
	for k := range resp.Trailer {
		h.Add("Trailer", k)
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		resp.Body.Close()
		keep = !resp.Close
		return nil
	}
	stream := resp.ContentLength == -1 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	bufp := e.bufs.getp()
	defer e.bufs.putp(bufp)
	ok := copyBody(w, resp.Body, *bufp, stream)
	if !ok {
		bc.c.Close()
	}
	resp.Body.Close()
	if ok && len(resp.Trailer) > 0 {
		for k, vv := range resp.Trailer {
			h[http.TrailerPrefix+k] = vv
		}
	}
	keep = ok && !resp.Close
	return nil
}

// copyBody copies the answer body, flushing after every read when stream.
// It reports whether the whole body was read and written.
func copyBody(w *recorder, body io.Reader, buf []byte, stream bool) bool {
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return false
			}
			if stream {
				w.Flush()
			}
		}
		if rerr == io.EOF {
			return true
		}
		if rerr != nil {
			return false
		}
	}
}

// writeRequestHead writes r's request line and headers for the backend:
// the original Host, hop-by-hop headers dropped, X-Forwarded-For extended
// with the client's address, X-Forwarded-Host and -Proto set.
func writeRequestHead(bw *bufio.Writer, r *http.Request) {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	uri := r.RequestURI
	if uri == "" || uri[0] != '/' {
		uri = r.URL.RequestURI()
	}
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(r.Host)
	bw.WriteString("\r\n")
	conn := r.Header["Connection"]
	for k, vv := range r.Header {
		switch k {
		case "Host", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded":
			continue
		}
		if isHop(k, conn) {
			continue
		}
		for _, v := range vv {
			writeHeaderLine(bw, k, v)
		}
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err == nil {
		bw.WriteString("X-Forwarded-For: ")
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
			bw.WriteString(sanitizeHeader(strings.Join(prior, ", ")))
			bw.WriteString(", ")
		}
		bw.WriteString(client)
		bw.WriteString("\r\n")
	}
	writeHeaderLine(bw, "X-Forwarded-Host", r.Host)
	bw.WriteString("X-Forwarded-Proto: http\r\n\r\n")
}

func writeHeaderLine(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(sanitizeHeader(v))
	bw.WriteString("\r\n")
}

// sanitizeHeader replaces CR and LF (which net/http never lets through
// anyway) so a value cannot split the request.
func sanitizeHeader(v string) string {
	if strings.ContainsAny(v, "\r\n") {
		return strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
	}
	return v
}
