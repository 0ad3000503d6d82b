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
