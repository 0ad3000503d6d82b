package sites

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// A database URL whose scheme does not match the server at its address (a
// mysql:// URL at PostgreSQL's port, a postgres:// URL at MariaDB's) is
// recognised from the first bytes on the wire, so the message says so
// instead of hanging or printing a driver's puzzle (docs/sites.md, "When
// the database cannot be read").

// WrongProtocolError says the server at a database URL's address speaks
// another protocol than the URL's scheme.
type WrongProtocolError struct {
	// Driver is the URL's; Addr the address dialled; Source where the
	// URL came from.
	Driver       Driver
	Addr, Source string
	// Server is what answers there: "PostgreSQL", or the version a MySQL
	// or MariaDB server gives ("10.11.6-MariaDB-0+deb12u1"); "" when it is
	// not known.
	Server string
	// Silent is true when the server sent nothing within the timeout.
	Silent  bool
	Timeout time.Duration
}

func (e *WrongProtocolError) Error() string {
	want := "PostgreSQL"
	if e.Driver == MySQL {
		want = "MySQL"
	}
	src := ""
	if e.Source != "" {
		src = " (from " + e.Source + ")"
	}
	switch {
	case e.Server == "PostgreSQL":
		return fmt.Sprintf("the server at %s%s does not speak the MySQL protocol: it is PostgreSQL; use a postgres:// URL, or fix the port", e.Addr, src)
	case e.Server != "":
		return fmt.Sprintf("the server at %s%s does not speak the %s protocol: it is MySQL/MariaDB (%s); use a mysql:// URL, or fix the port", e.Addr, src, want, e.Server)
	case e.Silent:
		return fmt.Sprintf("the server at %s%s does not speak the %s protocol: it sent no greeting within %s (is it PostgreSQL, or another service?); check the URL's scheme and port", e.Addr, src, want, e.Timeout)
	}
	return fmt.Sprintf("the server at %s%s does not speak the %s protocol: check the URL's scheme and port", e.Addr, src, want)
}

// pgSSLRequest is PostgreSQL's SSLRequest message: a server answers it
// with one byte, 'S' or 'N', before anything else.
var pgSSLRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// greetedConn replays the bytes read while checking the greeting.
type greetedConn struct {
	net.Conn
	r io.Reader
}

func (c *greetedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// dialMySQL dials a MySQL or MariaDB server and checks, within timeout,
// that it greets like one (a protocol 10 handshake, or an error packet)
// before the driver talks to it. A server that sends nothing is asked
// whether it is PostgreSQL. It returns a *WrongProtocolError for a server
// that is not MySQL.
func dialMySQL(ctx context.Context, network, addr string, timeout time.Duration, source string) (net.Conn, error) {
	conn, err := (&net.Dialer{KeepAlive: 5 * time.Minute}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	conn.SetReadDeadline(deadline)
	head := make([]byte, 5) // 3 bytes length, sequence, first payload byte
	n, err := io.ReadFull(conn, head)
	wrong := &WrongProtocolError{Driver: MySQL, Addr: addr, Source: source, Timeout: timeout}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && n == 0:
		wrong.Silent = true
		if isPostgres(conn) {
			wrong.Server = "PostgreSQL"
		}
		conn.Close()
		return nil, wrong
	case err != nil:
		conn.Close()
		if n > 0 {
			return nil, wrong
		}
		return nil, err
	case head[3] != 0 || (head[4] != 10 && head[4] != 0xff):
		conn.Close()
		return nil, wrong
	}
	conn.SetReadDeadline(time.Time{})
	return &greetedConn{Conn: conn, r: io.MultiReader(bytes.NewReader(head), conn)}, nil
}

// isPostgres sends a PostgreSQL SSLRequest on a server that waits for the
// client to speak first, and reports whether it answers like PostgreSQL.
func isPostgres(conn net.Conn) bool {
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(pgSSLRequest); err != nil {
		return false
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(conn, b); err != nil {
		return false
	}
	return b[0] == 'N' || b[0] == 'S'
}

// firstBytes records the first bytes each connection reads, for the
// message when a postgres:// URL reaches a MySQL server.
type firstBytes struct {
	mu    sync.Mutex // guards conns
	conns [][]byte
}

// conn wraps c so that its first reads are recorded.
func (f *firstBytes) conn(c net.Conn) net.Conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conns = append(f.conns, nil)
	return &recordingConn{Conn: c, f: f, i: len(f.conns) - 1}
}

// mysqlServer returns the version of the MySQL server that greeted one of
// the recorded connections.
func (f *firstBytes) mysqlServer() (version string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.conns {
		if v, ok := mysqlGreeting(b); ok {
			return v, true
		}
	}
	return "", false
}

type recordingConn struct {
	net.Conn
	f *firstBytes
	i int // index in f.conns
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.f.mu.Lock()
	if buf := c.f.conns[c.i]; n > 0 && len(buf) < 128 {
		c.f.conns[c.i] = append(buf, b[:min(n, 128-len(buf))]...)
	}
	c.f.mu.Unlock()
	return n, err
}

// mysqlGreeting reports whether b starts with a MySQL/MariaDB server
// greeting (sequence 0, protocol 10) and returns the server version it
// names ("10.11.6-MariaDB-0+deb12u1").
func mysqlGreeting(b []byte) (version string, ok bool) {
	if len(b) < 6 || b[3] != 0 || b[4] != 10 {
		return "", false
	}
	v := b[5:]
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	s := string(v)
	if len(s) > 6 && s[:6] == "5.5.5-" { // MariaDB's replication-compatible prefix
		s = s[6:]
	}
	return s, true
}
