package devproxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestRawIO(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, rw io.ReadWriter, c, peer net.Conn)
	}{
		{"read waits for data", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			go func() {
				time.Sleep(50 * time.Millisecond)
				peer.Write([]byte("hello"))
			}()
			buf := make([]byte, 64)
			n, err := rw.Read(buf)
			if err != nil || string(buf[:n]) != "hello" {
				t.Fatalf("Read = %q, %v; want hello", buf[:n], err)
			}
		}},
		{"orderly close is EOF", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			peer.Close()
			if n, err := rw.Read(make([]byte, 8)); n != 0 || err != io.EOF {
				t.Fatalf("Read = %d, %v; want 0, EOF", n, err)
			}
		}},
		{"reset is an error, not EOF", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			_, err := rw.Read(make([]byte, 8))
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("Read error = %v; want ECONNRESET", err)
			}
		}},
		{"read deadline", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			_, err := rw.Read(make([]byte, 8))
			var ne net.Error
			if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("Read error = %v; want a net.Error timeout (backendPeek relies on it)", err)
			}
		}},
		{"a write larger than the socket buffers goes out whole", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			want := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
			got := make(chan []byte)
			go func() {
				b, _ := io.ReadAll(peer)
				got <- b
			}()
			n, err := rw.Write(want)
			if err != nil || n != len(want) {
				t.Fatalf("Write = %d, %v; want %d", n, err, len(want))
			}
			c.(*net.TCPConn).CloseWrite()
			if b := <-got; !bytes.Equal(b, want) {
				t.Fatalf("peer read %d bytes, differing from the %d written", len(b), len(want))
			}
		}},
		{"write to a closed peer fails", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			var err error
			for i := 0; i < 100 && err == nil; i++ {
				_, err = rw.Write([]byte("x"))
				time.Sleep(time.Millisecond)
			}
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("Write error = %v; want EPIPE or ECONNRESET", err)
			}
		}},
		{"closed connection", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			c.Close()
			if _, err := rw.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Read error = %v; want net.ErrClosed", err)
			}
			if _, err := rw.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write error = %v; want net.ErrClosed", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			rw := newRawIO(c)
			if _, ok := rw.(*rawIO); !ok {
				t.Fatalf("newRawIO(%T) = %T; want *rawIO", c, rw)
			}
			tt.run(t, rw, c, peer)
		})
	}
}

func TestRawIONotTCP(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if rw := newRawIO(a); rw != io.ReadWriter(a) {
		t.Fatalf("newRawIO(net.Pipe) = %T; want the conn itself", rw)
	}
}

func TestHeldIO(t *testing.T) {
	// echo answers with "re:" and what it read, once n bytes came in.
	echo := func(peer net.Conn, n int) {
		b := make([]byte, n)
		if _, err := io.ReadFull(peer, b); err == nil {
			peer.Write(append([]byte("re:"), b[:min(n, 8)]...))
		}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, rw io.ReadWriter, c, peer net.Conn)
	}{
		{"a write waits for the next read", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			if n, err := rw.Write([]byte("ping")); n != 4 || err != nil {
				t.Fatalf("Write = %d, %v", n, err)
			}
			peer.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, err := peer.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the peer read %d bytes, %v before the held write's Read", n, err)
			}
			peer.SetReadDeadline(time.Time{})
			go echo(peer, 4)
			buf := make([]byte, 16)
			n, err := rw.Read(buf)
			if err != nil || string(buf[:n]) != "re:ping" {
				t.Fatalf("Read = %q, %v; want re:ping", buf[:n], err)
			}
		}},
		{"writes add up", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			rw.Write([]byte("pi"))
			rw.Write([]byte("ng"))
			go echo(peer, 4)
			buf := make([]byte, 16)
			if n, err := rw.Read(buf); err != nil || string(buf[:n]) != "re:ping" {
				t.Fatalf("Read = %q, %v; want re:ping", buf[:n], err)
			}
			// The next exchange starts from an empty buffer.
			rw.Write([]byte("pong"))
			go echo(peer, 4)
			if n, err := rw.Read(buf); err != nil || string(buf[:n]) != "re:pong" {
				t.Fatalf("second Read = %q, %v; want re:pong", buf[:n], err)
			}
		}},
		{"a held write larger than the socket buffers", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			big := bytes.Repeat([]byte("x"), 16<<20)
			rw.Write(big)
			go echo(peer, len(big))
			buf := make([]byte, 16)
			if n, err := rw.Read(buf); err != nil || string(buf[:n]) != "re:xxxxxxxx" {
				t.Fatalf("Read = %q, %v; want re:xxxxxxxx", buf[:n], err)
			}
		}},
		{"a dead peer fails the read", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			time.Sleep(10 * time.Millisecond)
			rw.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := rw.Read(make([]byte, 8))
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("Read error = %v; want EPIPE or ECONNRESET", err)
			}
		}},
		{"a peer that closed while idle", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			peer.Close() // FIN, as a backend's idle timeout sends
			time.Sleep(10 * time.Millisecond)
			rw.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := rw.Read(make([]byte, 8))
			if err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("Read error = %v; want EOF or ECONNRESET, without waiting for the deadline", err)
			}
		}},
		{"deadline after sending", func(t *testing.T, rw io.ReadWriter, c, peer net.Conn) {
			rw.Write([]byte("ping"))
			c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
			if _, err := rw.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Read error = %v; want a deadline error", err)
			}
			b := make([]byte, 4)
			if _, err := io.ReadFull(peer, b); err != nil || string(b) != "ping" {
				t.Fatalf("the peer got %q, %v; want ping", b, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			tt.run(t, newHeldIO(c), c, peer)
		})
	}
}
