package devproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// conn.go is siteplex's own HTTP/1.1 front end. The engine owns the accept
// loop of every listener: each connection is served by frontConn.serve,
// which reads request heads with a bufio.Reader (peeking, never consuming
// until a request is done) and forwards the common request itself:
//
//	an HTTP/1.1 GET or HEAD in origin form, no body, no Upgrade or Expect,
//	a head that fits in 4 KiB, for a Host that routes to a site whose
//	process is running.
//
// Such a request is written directly onto a pooled keep-alive backend
// connection (original Host, hop-by-hop headers dropped, X-Forwarded-For,
// -Host and -Proto set, exactly like the ReverseProxy path), the answer's
// head is parsed minimally, the body is copied (Content-Length, chunked
// passed through as it is, or until the backend closes) with a flush
// whenever the backend has nothing more buffered, and the connection loops
// for the next (possibly pipelined) request.
//
// Everything else — the index and API, unknown hosts, localhost and the
// cookie override, CONNECT, absolute-form targets, bodies, upgrades,
// HTTP/1.0, odd or oversized heads, a site that is not running, a backend
// failure before any byte reached the client — hands the connection, with
// the bytes it has buffered and not consumed, to the engine's net/http
// Server through a handoffListener, for the rest of the connection's life.
// net/http then sees exactly the bytes the client sent and applies every
// behaviour of proxy.go (lazy start, retries, the 502 page, records).

const (
	// frontReadSize bounds a request head on the fast path; a bigger head
	// is handed to net/http (whose limit is 1 MiB).
	frontReadSize = 4 << 10
	// frontWriteSize is the client write buffer.
	frontWriteSize = 4 << 10
	// frontHeaderTimeout and frontIdleTimeout match the http.Server's
	// ReadHeaderTimeout and IdleTimeout.
	frontHeaderTimeout = 10 * time.Second
	frontIdleTimeout   = 2 * time.Minute
	// maxConnTokens and maxXFF bound what the fast path remembers of a
	// head; more is handed to net/http.
	maxConnTokens = 8
	maxXFF        = 4
)

// Connection states for graceful shutdown.
const (
	frontActive int32 = iota // serving a request
	frontIdle                // waiting for a request head
)

// handoffListener is a net.Listener whose connections are the ones the
// front end gives up on; the engine's http.Server serves it.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// Accept returns the next handed-off connection.
func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops Accept; later hand-offs close their connection.
func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr is the real listener's address.
func (l *handoffListener) Addr() net.Addr { return l.addr }

// give hands c to the http.Server (or closes it when the server is gone).
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

// prefixConn is a client connection whose first bytes were already read
// into br: reads go through br, everything else to the connection.
type prefixConn struct {
	net.Conn
	br *bufio.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.br.Read(b) }

// CloseWrite lets net/http half-close the connection (its lingering close).
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// connServer runs the front end of one listener.
type connServer struct {
	e    *Engine
	ln   net.Listener
	hand *handoffListener
	// noWait is an already-cancelled context: Acquire answers at once for
	// a running process and gives up (after starting it, if stopped)
	// otherwise, so that waiting happens on the net/http path, which
	// notices clients that go away.
	noWait context.Context

	rpool sync.Pool // *bufio.Reader, frontReadSize
	wpool sync.Pool // *bufio.Writer, frontWriteSize

	// fast and handed count requests served here and connections handed
	// to net/http (for tests and figures).
	fast, handed atomic.Int64

	// mu guards conns and closed.
	mu     sync.Mutex
	conns  map[*frontConn]struct{}
	closed bool
	// closing mirrors closed for the per-request check, without the lock.
	closing atomic.Bool
	wg      sync.WaitGroup
}

func newConnServer(e *Engine, ln net.Listener) *connServer {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return &connServer{e: e, ln: ln, hand: newHandoffListener(ln.Addr()), noWait: ctx,
		conns: map[*frontConn]struct{}{}}
}

// acceptLoop accepts connections until the listener is closed.
func (s *connServer) acceptLoop() {
	var delay time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off as net/http does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		fc := &frontConn{s: s, c: c}
		fc.state.Store(frontIdle)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[fc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go fc.serve()
	}
}

// shutdown stops accepting, lets requests in progress finish and closes
// idle connections; when ctx ends, it closes the rest.
func (s *connServer) shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	s.closing.Store(true)
	s.mu.Unlock()
	s.ln.Close()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		for fc := range s.conns {
			if fc.state.Load() == frontIdle {
				// Wake the reader; serve sees closed and returns.
				_ = fc.c.SetReadDeadline(time.Unix(1, 0))
			}
		}
		s.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for fc := range s.conns {
				fc.c.Close()
				if bc := fc.backend.Load(); bc != nil {
					bc.c.Close()
				}
			}
			s.mu.Unlock()
			s.wg.Wait()
			return
		case <-tick.C:
		}
	}
	s.wg.Wait()
}

func (s *connServer) isClosed() bool { return s.closing.Load() }

// frontConn is one client connection on the front end.
type frontConn struct {
	s      *connServer
	c      net.Conn
	io     io.ReadWriter // c's reads and writes (raw system calls on Linux)
	br     *bufio.Reader
	bw     *bufio.Writer
	client string // the client's IP, for X-Forwarded-For
	state  atomic.Int32
	// backend is the backend connection in use (closed on a forced
	// shutdown so that a hung backend cannot block it).
	backend atomic.Pointer[backendConn]
	req     frontReq
	resp    respHead
	bc      *backendConn // the backend connection relay is reading
	// rdl is the read deadline last set on c.
	rdl time.Time
}

// setReadDeadline sets c's read deadline to d unless the one already set
// is within a second of it (a timer update per request costs more than
// the slack is worth).
func (fc *frontConn) setReadDeadline(d time.Time) {
	if diff := d.Sub(fc.rdl); diff > -time.Second && diff < time.Second {
		return
	}
	fc.rdl = d
	_ = fc.c.SetReadDeadline(d)
}

// frontReq is what the fast path needs of a request head. Its byte slices
// point into the client reader's buffer and are valid until the head is
// discarded.
type frontReq struct {
	head   []byte // the whole head, up to and including the empty line
	line   int    // length of the request line (with its line end)
	head1  bool   // HEAD (else GET)
	uri    []byte
	host   []byte
	close  bool // Connection: close
	tokens [maxConnTokens][]byte
	ntok   int
	xff    [maxXFF][]byte
	nxff   int
}

// serve runs the connection's request loop.
func (fc *frontConn) serve() {
	s := fc.s
	handed := false
	defer func() {
		s.mu.Lock()
		delete(s.conns, fc)
		s.mu.Unlock()
		if !handed {
			fc.c.Close()
			if fc.br != nil {
				fc.br.Reset(nil)
				s.rpool.Put(fc.br)
			}
		}
		if fc.bw != nil {
			fc.bw.Reset(nil)
			s.wpool.Put(fc.bw)
		}
		s.wg.Done()
	}()
	fc.io = newRawIO(fc.c)
	if br, ok := s.rpool.Get().(*bufio.Reader); ok {
		br.Reset(fc.io)
		fc.br = br
	} else {
		fc.br = bufio.NewReaderSize(fc.io, frontReadSize)
	}
	if bw, ok := s.wpool.Get().(*bufio.Writer); ok {
		bw.Reset(fc.io)
		fc.bw = bw
	} else {
		fc.bw = bufio.NewWriterSize(fc.io, frontWriteSize)
	}
	if host, _, err := net.SplitHostPort(fc.c.RemoteAddr().String()); err == nil {
		fc.client = host
	}
	for {
		if s.isClosed() && fc.br.Buffered() == 0 {
			return
		}
		fc.state.Store(frontIdle)
		head, err := fc.readHead()
		fc.state.Store(frontActive)
		if err != nil {
			return // EOF, timeout, or shutdown
		}
		if head == nil {
			fc.handoff()
			handed = true
			return
		}
		switch fc.forward(head) {
		case fwdKeep:
			continue
		case fwdClose:
			fc.bw.Flush()
			return
		case fwdHandoff:
			fc.handoff()
			handed = true
			return
		}
	}
}

// handoff gives the connection, with its unconsumed bytes, to net/http.
func (fc *frontConn) handoff() {
	fc.s.handed.Add(1)
	fc.bw.Flush()
	fc.rdl = time.Time{}
	_ = fc.c.SetReadDeadline(time.Time{})
	fc.s.hand.give(&prefixConn{Conn: fc.c, br: fc.br})
}

// readHead waits for a whole request head in the client buffer and returns
// it (still buffered). It returns nil, nil when the head does not fit.
func (fc *frontConn) readHead() ([]byte, error) {
	br := fc.br
	if br.Buffered() == 0 {
		fc.setReadDeadline(time.Now().Add(frontIdleTimeout))
		if _, err := br.Peek(1); err != nil {
			return nil, err
		}
	}
	for i := 0; ; i++ {
		buf, _ := br.Peek(br.Buffered())
		if n := headEnd(buf); n > 0 {
			return buf[:n], nil
		}
		if br.Buffered() >= br.Size() {
			return nil, nil
		}
		if i == 0 {
			// The head did not come in one piece: the rest gets the
			// header timeout.
			fc.setReadDeadline(time.Now().Add(frontHeaderTimeout))
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			return nil, err
		}
	}
}

// headEnd returns the length of the head in b (through the first empty
// line, CRLF or bare LF), or -1 when b holds no whole head.
func headEnd(b []byte) int {
	i := 0
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		j += i
		if j == i || (j == i+1 && b[i] == '\r') {
			return j + 1
		}
		i = j + 1
	}
}

// nextLine splits b at its first line end: the line without CR LF, and
// the rest.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// isTokenChar reports whether c may appear in a header name (RFC 9110 tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// splitHeader splits a header line into a valid name and its trimmed
// value; ok is false for anything net/http might treat differently.
func splitHeader(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	for _, c := range name {
		if !isTokenChar(c) {
			return nil, nil, false
		}
	}
	value = bytes.Trim(line[colon+1:], " \t")
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// headerName returns the name of a header line already validated by
// splitHeader.
func headerName(line []byte) []byte {
	if i := bytes.IndexByte(line, ':'); i > 0 {
		return line[:i]
	}
	return nil
}

// eq reports whether the header name b is s (s lower-case).
func eq(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// isHopName reports whether the header name b is hop-by-hop (RFC 9110
// §7.6.1) or named by one of the Connection tokens.
func isHopName(b []byte, tokens [][]byte) bool {
	switch len(b) {
	case 2:
		if eq(b, "te") {
			return true
		}
	case 7:
		if eq(b, "upgrade") || eq(b, "trailer") {
			return true
		}
	case 10:
		if eq(b, "connection") || eq(b, "keep-alive") {
			return true
		}
	case 16:
		if eq(b, "proxy-connection") {
			return true
		}
	case 17:
		if eq(b, "transfer-encoding") {
			return true
		}
	case 18:
		if eq(b, "proxy-authenticate") {
			return true
		}
	case 19:
		if eq(b, "proxy-authorization") {
			return true
		}
	}
	for _, t := range tokens {
		if bytes.EqualFold(b, t) {
			return true
		}
	}
	return false
}

// connTokens adds the comma-separated tokens of a Connection value to
// dst; it reports close, whether an upgrade is asked for, and ok=false
// when there are too many.
func connTokens(v []byte, dst *[maxConnTokens][]byte, n *int) (closeConn, upgrade, ok bool) {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		t = bytes.Trim(t, " \t")
		switch {
		case len(t) == 0:
		case eq(t, "close"):
			closeConn = true
		case eq(t, "keep-alive"):
		case eq(t, "upgrade"):
			upgrade = true
		default:
			if *n == maxConnTokens {
				return closeConn, upgrade, false
			}
			dst[*n] = t
			*n++
		}
	}
	return closeConn, upgrade, true
}

// parseRequest fills fc.req from head and reports whether the request may
// take the fast path (before routing).
func (fc *frontConn) parseRequest(head []byte) bool {
	r := &fc.req
	*r = frontReq{head: head}
	line, rest := nextLine(head)
	r.line = len(head) - len(rest)
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		line, r.head1 = line[5:], true
	default:
		return false
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || string(line[sp+1:]) != "HTTP/1.1" {
		return false
	}
	r.uri = line[:sp]
	if r.uri[0] != '/' {
		return false // absolute form, '*': net/http decides
	}
	for _, c := range r.uri {
		if c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	hosts := 0
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return false // obsolete line folding
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return false
		}
		switch {
		case eq(name, "host"):
			hosts++
			r.host = value
		case eq(name, "content-length"), eq(name, "transfer-encoding"),
			eq(name, "upgrade"), eq(name, "expect"):
			return false
		case eq(name, "connection"):
			closeConn, upgrade, ok := connTokens(value, &r.tokens, &r.ntok)
			if upgrade || !ok {
				return false
			}
			r.close = r.close || closeConn
		case eq(name, "x-forwarded-for"):
			if r.nxff == maxXFF {
				return false
			}
			r.xff[r.nxff] = value
			r.nxff++
		}
	}
	return hosts == 1 && len(r.host) > 0
}

// fwdResult says how the connection goes on after forward.
type fwdResult uint8

const (
	fwdKeep    fwdResult = iota // the request is done; read the next one
	fwdClose                    // the request is done; close the connection
	fwdHandoff                  // nothing was written: net/http takes over
)

// forward serves the request whose head is buffered, or reports
// fwdHandoff without having consumed or written anything.
func (fc *frontConn) forward(head []byte) fwdResult {
	e := fc.s.e
	if !fc.parseRequest(head) {
		return fwdHandoff
	}
	r := &fc.req
	kind, rt := e.table.Load().lookup(unsafeString(r.host))
	if kind != toSite {
		return fwdHandoff
	}
	// The path as net/http's URL.Path has it, for the request record.
	path := r.uri
	if i := bytes.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	p := string(path)
	if bytes.IndexByte(path, '%') >= 0 {
		u, err := url.PathUnescape(p)
		if err != nil {
			return fwdHandoff // net/http answers 400
		}
		p = u
	}
	start := time.Now()
	addr, release, err := e.acquire(fc.s.noWait, rt)
	if err != nil {
		return fwdHandoff
	}
	bc, resp, ex := fc.exchange(addr)
	var (
		status      = 499 // the client went away before an answer (as nginx logs it)
		n           int64
		res         = fwdClose
		keepBackend bool
	)
	switch ex {
	case exHandoff:
		release()
		return fwdHandoff
	case exOK:
		fc.backend.Store(bc)
		fc.bc = bc
		status, n, res, keepBackend = fc.relay(bc, resp)
		fc.bc = nil
		fc.backend.Store(nil)
		if keepBackend {
			e.pool.put(addr, bc)
		} else {
			bc.c.Close()
		}
	}
	release()
	method := http.MethodGet
	if r.head1 {
		method = http.MethodHead
	}
	fc.s.fast.Add(1)
	rt.requests.Add(1)
	e.record(RequestRecord{Time: start, Site: rt.site.Slug, Method: method, Path: p,
		Status: status, Duration: time.Since(start), Bytes: n})
	if res == fwdKeep {
		fc.br.Discard(len(head))
		if r.close {
			return fwdClose
		}
		if fc.br.Buffered() == 0 {
			// Nothing pipelined behind it: send the answer now.
			if fc.bw.Flush() != nil {
				return fwdClose
			}
		}
	}
	return res
}

// respHead is the parsed head of a backend answer; its slices point into
// the backend reader's buffer.
type respHead struct {
	head    []byte
	status  int
	reason  []byte // status code and reason phrase, as sent
	http10  bool
	length  int64 // -1: none
	chunked bool
	close   bool // the backend closes after this answer
	tokens  [maxConnTokens][]byte
	ntok    int
}

// exchangeResult says how exchange ended.
type exchangeResult uint8

const (
	exOK      exchangeResult = iota // the answer's head is buffered
	exHandoff                       // nothing reached the client: net/http takes over
	exGone                          // the client went away while the backend was silent
)

// exchange sends the request on a pooled connection to addr (once more on
// a fresh one when a reused connection turns out dead) and reads the
// answer's head, skipping 1xx answers.
func (fc *frontConn) exchange(addr string) (*backendConn, *respHead, exchangeResult) {
	e := fc.s.e
	for attempt := 0; attempt < 2; attempt++ {
		var (
			bc     *backendConn
			reused bool
			err    error
		)
		if attempt == 0 {
			bc, reused, err = e.pool.get(e.runCtx, addr)
		} else {
			var c net.Conn
			c, err = e.pool.dialer.DialContext(e.runCtx, "tcp", addr)
			if err == nil {
				bc = newBackendConn(c)
			}
		}
		if err != nil {
			return nil, nil, exHandoff
		}
		fc.backend.Store(bc)
		fc.writeRequest(bc.bw)
		if err := bc.bw.Flush(); err != nil {
			fc.backend.Store(nil)
			bc.c.Close()
			if reused {
				continue
			}
			return nil, nil, exHandoff
		}
		resp, err := fc.readResponseHead(bc)
		fc.backend.Store(nil)
		if err != nil {
			bc.c.Close()
			switch {
			case errors.Is(err, errClientGone):
				return nil, nil, exGone
			case reused && !errors.Is(err, errOddResponse):
				continue
			}
			return nil, nil, exHandoff
		}
		return bc, resp, exOK
	}
	return nil, nil, exHandoff
}

// backendCheck is how long the fast path waits on a silent backend before
// it looks whether the client is still there (net/http's path notices a
// client that goes away with a background read; this one polls).
const backendCheck = time.Second

// errClientGone: the client closed its connection while the backend was
// silent.
var errClientGone = errors.New("client went away")

// backendPeek waits until bc's reader holds n bytes. While the backend is
// silent it checks every backendCheck that the client is still connected.
func (fc *frontConn) backendPeek(bc *backendConn, n int) error {
	for {
		// The deadline is moved only when it is about to expire, not on
		// every request.
		if now := time.Now(); bc.rdl.Sub(now) < backendCheck/2 {
			bc.rdl = now.Add(backendCheck)
			_ = bc.c.SetReadDeadline(bc.rdl)
		}
		_, err := bc.br.Peek(n)
		if err == nil {
			return nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return err
		}
		if clientGone(fc.c) {
			return errClientGone
		}
	}
}

// errOddResponse is an answer the fast path does not relay (net/http's
// path gets the request instead).
var errOddResponse = errors.New("answer not relayed by the fast path")

// readResponseHead reads the next final answer's head from bc (1xx
// answers are dropped) into fc.resp without consuming it.
func (fc *frontConn) readResponseHead(bc *backendConn) (*respHead, error) {
	br, rh := bc.br, &fc.resp
	for {
		if err := fc.backendPeek(bc, 1); err != nil {
			return nil, err
		}
		var head []byte
		for {
			buf, _ := br.Peek(br.Buffered())
			if n := headEnd(buf); n > 0 {
				head = buf[:n]
				break
			}
			if br.Buffered() >= br.Size() {
				return nil, errOddResponse
			}
			if err := fc.backendPeek(bc, br.Buffered()+1); err != nil {
				return nil, err
			}
		}
		if !parseResponseHead(head, rh) {
			return nil, errOddResponse
		}
		if rh.status >= 200 {
			return rh, nil
		}
		if rh.status == http.StatusSwitchingProtocols {
			return nil, errOddResponse // never asked for
		}
		br.Discard(len(head)) // 100 Continue, 103 Early Hints
	}
}

// parseResponseHead parses a status line and headers into rh.
func parseResponseHead(head []byte, rh *respHead) bool {
	*rh = respHead{head: head, length: -1}
	line, rest := nextLine(head)
	switch {
	case bytes.HasPrefix(line, []byte("HTTP/1.1 ")):
	case bytes.HasPrefix(line, []byte("HTTP/1.0 ")):
		rh.http10 = true
	default:
		return false
	}
	rh.reason = line[9:]
	if len(rh.reason) < 3 || len(rh.reason) > 3 && rh.reason[3] != ' ' {
		return false
	}
	for _, c := range rh.reason[:3] {
		if c < '0' || c > '9' {
			return false
		}
		rh.status = rh.status*10 + int(c-'0')
	}
	if rh.status < 100 {
		return false
	}
	for _, c := range rh.reason {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	keepAlive10 := false
	for len(rest) > 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return false
		}
		name, value, ok := splitHeader(line)
		if !ok {
			return false
		}
		switch {
		case eq(name, "content-length"):
			n, ok := parseLength(value)
			if !ok || rh.length >= 0 && rh.length != n {
				return false
			}
			rh.length = n
		case eq(name, "transfer-encoding"):
			if !eq(value, "chunked") || rh.chunked {
				return false
			}
			rh.chunked = true
		case eq(name, "connection"):
			closeConn, _, ok := connTokens(value, &rh.tokens, &rh.ntok)
			if !ok {
				return false
			}
			rh.close = rh.close || closeConn
			keepAlive10 = keepAlive10 || bytes.Contains(bytes.ToLower(value), []byte("keep-alive"))
		}
	}
	if rh.chunked {
		rh.length = -1 // Transfer-Encoding wins (RFC 9112 §6.3)
	}
	if rh.http10 && !keepAlive10 {
		rh.close = true
	}
	return true
}

// parseLength parses a Content-Length value.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// writeRequest writes the request head for the backend: the original
// request line and Host, hop-by-hop headers dropped, X-Forwarded-For
// extended with the client's address, X-Forwarded-Host and -Proto set.
func (fc *frontConn) writeRequest(bw *bufio.Writer) {
	r := &fc.req
	if r.head1 {
		bw.WriteString("HEAD ")
	} else {
		bw.WriteString("GET ")
	}
	bw.Write(r.uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.Write(r.host)
	bw.WriteString("\r\n")
	tokens := r.tokens[:r.ntok]
	rest := r.head[r.line:]
	for len(rest) > 0 {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		name := headerName(line)
		switch {
		case eq(name, "host"), eq(name, "x-forwarded-for"), eq(name, "x-forwarded-host"),
			eq(name, "x-forwarded-proto"), eq(name, "forwarded"):
			continue
		}
		if isHopName(name, tokens) {
			continue
		}
		bw.Write(line)
		bw.WriteString("\r\n")
	}
	if fc.client != "" {
		bw.WriteString("X-Forwarded-For: ")
		for i := 0; i < r.nxff; i++ {
			bw.Write(r.xff[i])
			bw.WriteString(", ")
		}
		bw.WriteString(fc.client)
		bw.WriteString("\r\n")
	}
	bw.WriteString("X-Forwarded-Host: ")
	bw.Write(r.host)
	bw.WriteString("\r\nX-Forwarded-Proto: http\r\n\r\n")
}

// relay writes the answer's head and body to the client. It returns the
// status, the body bytes relayed, how the client connection goes on and
// whether the backend connection can be reused.
func (fc *frontConn) relay(bc *backendConn, rh *respHead) (status int, n int64, res fwdResult, keepBackend bool) {
	r := &fc.req
	bw := fc.bw
	noBody := r.head1 || rh.status == http.StatusNoContent || rh.status == http.StatusNotModified
	untilClose := !noBody && !rh.chunked && rh.length < 0
	closeClient := r.close || untilClose

	bw.WriteString("HTTP/1.1 ")
	bw.Write(rh.reason)
	bw.WriteString("\r\n")
	tokens := rh.tokens[:rh.ntok]
	rest := rh.head
	_, rest = nextLine(rest) // the status line
	for len(rest) > 0 {
		var line []byte
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		name := headerName(line)
		// A chunked answer goes through as it is, trailers included.
		if rh.chunked && (eq(name, "trailer") || eq(name, "transfer-encoding")) {
			bw.Write(line)
			bw.WriteString("\r\n")
			continue
		}
		if isHopName(name, tokens) || rh.chunked && eq(name, "content-length") {
			continue
		}
		bw.Write(line)
		bw.WriteString("\r\n")
	}
	if closeClient {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	bc.br.Discard(len(rh.head))
	status = rh.status

	var ok bool
	switch {
	case noBody:
		ok = true
	case rh.chunked:
		n, ok = fc.copyChunked(bc.br)
	case rh.length >= 0:
		n, ok = fc.copyN(bc.br, rh.length)
	default:
		n, ok = fc.copyUntilEOF(bc.br)
	}
	if !ok {
		return status, n, fwdClose, false
	}
	keepBackend = !untilClose && !rh.close
	if closeClient {
		return status, n, fwdClose, keepBackend
	}
	return status, n, fwdKeep, keepBackend
}

// errClient marks a failed write to the client.
var errClient = errors.New("client write failed")

// fill makes sure br has buffered data, flushing the client first when it
// has to wait for the backend (that is what streams a slow answer).
func (fc *frontConn) fill(br *bufio.Reader) error {
	if br.Buffered() > 0 {
		return nil
	}
	if fc.bw.Buffered() > 0 {
		if err := fc.bw.Flush(); err != nil {
			return errClient
		}
	}
	return fc.backendPeek(fc.bc, 1)
}

// copyN copies exactly n body bytes.
func (fc *frontConn) copyN(br *bufio.Reader, n int64) (int64, bool) {
	var done int64
	for done < n {
		if err := fc.fill(br); err != nil {
			return done, false
		}
		b, _ := br.Peek(int(min(int64(br.Buffered()), n-done)))
		if _, err := fc.bw.Write(b); err != nil {
			return done, false
		}
		br.Discard(len(b))
		done += int64(len(b))
	}
	return done, true
}

// copyUntilEOF copies a body that ends when the backend closes.
func (fc *frontConn) copyUntilEOF(br *bufio.Reader) (int64, bool) {
	var done int64
	for {
		if err := fc.fill(br); err != nil {
			return done, errors.Is(err, io.EOF)
		}
		b, _ := br.Peek(br.Buffered())
		if _, err := fc.bw.Write(b); err != nil {
			return done, false
		}
		br.Discard(len(b))
		done += int64(len(b))
	}
}

// copyChunked passes a chunked body through unchanged (chunk sizes,
// extensions and trailers included) and returns the data bytes.
func (fc *frontConn) copyChunked(br *bufio.Reader) (int64, bool) {
	var done int64
	line := func() ([]byte, bool) {
		if err := fc.fill(br); err != nil {
			return nil, false
		}
		l, err := br.ReadSlice('\n')
		if err != nil {
			return nil, false
		}
		if _, err := fc.bw.Write(l); err != nil {
			return nil, false
		}
		return l, true
	}
	for {
		l, ok := line()
		if !ok {
			return done, false
		}
		size, ok := chunkSize(l)
		if !ok {
			return done, false
		}
		if size == 0 {
			// Trailers, then the empty line.
			for {
				l, ok := line()
				if !ok {
					return done, false
				}
				if len(bytes.TrimRight(l, "\r\n")) == 0 {
					return done, true
				}
			}
		}
		m, ok := fc.copyN(br, size)
		done += m
		if !ok {
			return done, false
		}
		if l, ok := line(); !ok || len(bytes.TrimRight(l, "\r\n")) != 0 {
			return done, false
		}
	}
}

// chunkSize parses a chunk-size line ("1a;ext=1\r\n").
func chunkSize(l []byte) (int64, bool) {
	var n int64
	digits := 0
	for _, c := range l {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == ';' || c == ' ' || c == '\t' || c == '\r' || c == '\n':
			return n, digits > 0
		default:
			return 0, false
		}
		if digits++; digits > 15 {
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return 0, false
}
