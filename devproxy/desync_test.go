package devproxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siteplex/siteplex/sites"
)

// The tests in this file put deliberately sloppy backends behind the
// engine: raw TCP servers that answer out of turn, send bodies where HTTP
// allows none, or hang up after reading a request. Whatever they do, no
// client may see another request's answer, and no request may reach a
// process more often than docs/engine.md ("Nothing runs twice") allows.

// smuggled is the unsolicited answer a sloppy backend sends; a client that
// ever reads "SMUGGLED" got an answer that was not its own.
const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nContent-Type: text/plain\r\n\r\nSMUGGLED"

// rawBackend is a hand-written HTTP/1.1 server that keeps connections
// alive and answers each request by its path (see answer). It counts the
// request lines it read.
type rawBackend struct {
	ln net.Listener

	mu    sync.Mutex // guards lines
	lines map[string]int
}

func newRawBackend(t testing.TB) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln, lines: map[string]int{}}
	go b.accept()
	t.Cleanup(func() { ln.Close() })
	return b
}

func (b *rawBackend) addr() string { return b.ln.Addr().String() }

// seen is how often the backend read the request line line.
func (b *rawBackend) seen(line string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lines[line]
}

func (b *rawBackend) accept() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.serve(c)
	}
}

// serve reads requests (head, and a Content-Length body) and answers them
// on one connection until the peer closes it or an answer hangs up.
func (b *rawBackend) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		n := 0
		for {
			h, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if h == "\r\n" || h == "\n" {
				break
			}
			if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return
		}
		b.mu.Lock()
		b.lines[line]++
		b.mu.Unlock()
		if !b.answer(c, line) {
			return
		}
	}
}

// answer writes the answer to one request line; false hangs up.
func (b *rawBackend) answer(c net.Conn, line string) bool {
	f := strings.Fields(line)
	if len(f) < 2 {
		return false
	}
	path, _, _ := strings.Cut(f[1], "?")
	own := func(status string) string {
		body := "own " + f[0] + " " + f[1]
		return fmt.Sprintf("HTTP/1.1 %s\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s", status, len(body), body)
	}
	var err error
	switch path {
	case "/extra": // an answer, then another one nobody asked for
		_, err = io.WriteString(c, own("200 OK")+smuggled)
	case "/extra-late": // the same, the unsolicited one 300 ms later
		if _, err = io.WriteString(c, own("200 OK")); err == nil {
			time.Sleep(300 * time.Millisecond)
			_, err = io.WriteString(c, smuggled)
		}
	case "/204": // no body allowed: one follows
		_, err = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"+smuggled)
	case "/304":
		_, err = io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"+smuggled)
	case "/head": // a HEAD answered with a body (Django's runserver does this)
		_, err = io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(smuggled), smuggled))
	case "/http10-te": // HTTP/1.0 cannot be chunked: the framing is not to be trusted
		_, err = io.WriteString(c, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"+smuggled)
	case "/drop": // read the request, hang up without a word
		return false
	case "/malformed":
		_, _ = io.WriteString(c, "HTTP/1.1 two hundred\r\n\r\n")
		return false
	case "/huge-head":
		_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 2<<20)+"\r\nContent-Length: 2\r\n\r\nok")
	default:
		_, err = io.WriteString(c, own("200 OK"))
	}
	return err == nil
}

// startSloppy runs an engine over two sites whose processes are raw
// backends: two of them (per-site mode), or one for both (single mode).
func startSloppy(t *testing.T, single bool) (string, *rawBackend, *rawBackend) {
	t.Helper()
	list := []sites.Site{
		{ID: 1, Slug: "one", Domain: "one.example", LocalDomain: "one.localhost", Enabled: true},
		{ID: 2, Slug: "two", Domain: "two.example", LocalDomain: "two.localhost", Enabled: true},
	}
	b1 := newRawBackend(t)
	b2 := b1
	if !single {
		b2 = newRawBackend(t)
	}
	bs := &backendSet{addr: map[string]string{"one": b1.addr(), "two": b2.addr()}}
	_, addr := startTestEngine(t, list, bs, 0)
	return addr, b1, b2
}

// rawRoundTrip sends one request on a new connection and reads the
// answer's head and up to max bytes of body within wait; it returns the
// status and the body read.
func rawRoundTrip(t *testing.T, addr, method, host, target string, wait time.Duration) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	req, _ := http.NewRequest(method, "http://"+host+target, nil)
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): reading the answer: %v", method, target, host, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(body)
}

func TestSloppyBackendsCannotDesync(t *testing.T) {
	cases := []struct {
		name, method, path string
		// settle: how long the unsolicited bytes take to arrive.
		settle time.Duration
		// cut: the first answer never ends by itself (read until close).
		cut bool
	}{
		{"extra bytes after an answer", "GET", "/extra", 0, false},
		{"extra bytes 300 ms late", "GET", "/extra-late", 500 * time.Millisecond, false},
		{"204 with a body", "GET", "/204", 0, false},
		{"304 with a body", "GET", "/304", 0, false},
		{"HEAD answered with a body", "HEAD", "/head", 0, false},
		{"HTTP/1.0 keep-alive with Transfer-Encoding", "GET", "/http10-te", 0, true},
	}
	for _, mode := range []string{"per-site", "single"} {
		for _, tc := range cases {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				addr, b1, b2 := startSloppy(t, mode == "single")
				wait := 5 * time.Second
				if tc.cut {
					wait = 500 * time.Millisecond
				}
				status, body := rawRoundTrip(t, addr, tc.method, "one.localhost", tc.path, wait)
				if status/100 != 2 && status != http.StatusNotModified {
					t.Errorf("the sloppy request itself: status %d", status)
				}
				if tc.method == "HEAD" && body != "" {
					t.Errorf("a HEAD answer reached the client with a body: %q", body)
				}
				time.Sleep(tc.settle)
				// Later clients, on site one and on site two (in single
				// mode the same process), each get their own answer.
				for i := range 6 {
					host := []string{"one.localhost", "two.localhost"}[i%2]
					target := "/own?i=" + strconv.Itoa(i)
					status, body := rawRoundTrip(t, addr, "GET", host, target, 5*time.Second)
					if want := "own GET " + target; status != 200 || body != want {
						t.Fatalf("client %d (Host %s) got %d %q, want its own answer %q", i, host, status, body, want)
					}
				}
				for i := range 6 {
					line := "GET /own?i=" + strconv.Itoa(i) + " HTTP/1.1"
					if n := b1.seen(line) + b2.seen(line)*boolInt(b2 != b1); n != 1 {
						t.Errorf("the backend read %q %d times, want once", line, n)
					}
				}
				line := tc.method + " " + tc.path + " HTTP/1.1"
				if n := b1.seen(line); n != 1 {
					t.Errorf("the backend read %q %d times, want once", line, n)
				}
			})
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestConcurrentClientsNeverSeeSmuggledAnswers mixes sloppy requests with
// ordinary ones from many clients at once: whatever the timing, nobody
// reads the unsolicited answer, and every ordinary request runs once.
func TestConcurrentClientsNeverSeeSmuggledAnswers(t *testing.T) {
	for _, mode := range []string{"per-site", "single"} {
		t.Run(mode, func(t *testing.T) {
			addr, b1, b2 := startSloppy(t, mode == "single")
			tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 20 * time.Second}
			var wg sync.WaitGroup
			errs := make(chan string, 1000)
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 25 {
						host := []string{"one.localhost", "two.localhost"}[(w+i)%2]
						method, path := "GET", fmt.Sprintf("/own?w=%d&i=%d", w, i)
						switch i % 5 {
						case 1:
							path = "/extra"
						case 2:
							path = "/204"
						case 3:
							method, path = "HEAD", "/head"
						}
						req, _ := http.NewRequest(method, "http://"+addr+path, nil)
						req.Host = host
						resp, err := client.Do(req)
						if err != nil {
							errs <- fmt.Sprintf("%s %s: %v", method, path, err)
							continue
						}
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if strings.Contains(string(body), "SMUGGLED") {
							errs <- fmt.Sprintf("%s %s (Host %s) got the smuggled answer", method, path, host)
						}
						if strings.HasPrefix(path, "/own") && (resp.StatusCode != 200 || string(body) != "own GET "+path) {
							errs <- fmt.Sprintf("%s (Host %s) got %d %q, want its own answer", path, host, resp.StatusCode, body)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for e := range errs {
				t.Error(e)
			}
			for w := range 8 {
				for i := 0; i < 25; i += 5 {
					line := fmt.Sprintf("GET /own?w=%d&i=%d HTTP/1.1", w, i)
					if n := b1.seen(line) + b2.seen(line)*boolInt(b2 != b1); n != 1 {
						t.Errorf("the backend read %q %d times, want once", line, n)
					}
				}
			}
		})
	}
}

// TestNothingRunsTwice counts what reaches a backend that fails in the
// ways a process can: hanging up after reading a request (on a fresh and
// on a kept-alive connection), a malformed or oversized answer head.
func TestNothingRunsTwice(t *testing.T) {
	tests := []struct {
		name, method, path string
		hdr                map[string]string
		body               string
		// warm opens kept-alive connections first, so the request goes on
		// a reused one (where net/http's Transport resends on its own).
		warm    bool
		max     int // the most times the backend may read the request line
		min     int
		wantErr bool
	}{
		{"GET, hang-up on a fresh connection", "GET", "/drop", nil, "", false, 2, 1, true},
		{"GET, hang-up on kept-alive connections", "GET", "/drop", nil, "", true, 2, 1, true},
		{"HEAD, hang-up on kept-alive connections", "HEAD", "/drop", nil, "", true, 2, 1, true},
		{"POST, hang-up", "POST", "/drop", nil, "payload", false, 1, 1, true},
		{"POST, hang-up on kept-alive connections", "POST", "/drop", nil, "payload", true, 1, 1, true},
		{"POST without a body, hang-up on kept-alive connections", "POST", "/drop", nil, "", true, 1, 1, true},
		{"DELETE with Idempotency-Key, hang-up", "DELETE", "/drop", map[string]string{"Idempotency-Key": "k1"}, "", true, 2, 1, true},
		{"GET, malformed answer", "GET", "/malformed", nil, "", true, 1, 1, true},
		{"GET, 2 MiB answer head", "GET", "/huge-head", nil, "", true, 1, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, b, _ := startSloppy(t, false)
			tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			if tt.warm {
				// Several kept-alive backend connections in the engine's pool.
				var wg sync.WaitGroup
				for i := range 8 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						req, _ := http.NewRequest("GET", "http://"+addr+"/own?warm="+strconv.Itoa(i), nil)
						req.Host = "one.localhost"
						if resp, err := client.Do(req); err == nil {
							_, _ = io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					}()
				}
				wg.Wait()
			}
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			req, _ := http.NewRequest(tt.method, "http://"+addr+tt.path, body)
			req.Host = "one.localhost"
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if tt.wantErr && resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502", resp.StatusCode)
			}
			line := tt.method + " " + tt.path + " HTTP/1.1"
			if n := b.seen(line); n < tt.min || n > tt.max {
				t.Errorf("the backend read %q %d times, want %d to %d", line, n, tt.min, tt.max)
			}
		})
	}
}
