package devproxy

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a TCP connection with raw system calls on its
// non-blocking socket, waiting through the runtime's poller as net.Conn
// does. A plain net.Conn read or write tells the scheduler it is in a
// system call; on loopback a write runs the whole TCP path of both ends
// and lasts long enough that the runtime's monitor thread hands the
// processor to another thread and keeps waking every 20 µs to do so —
// measured as a tenth of the proxy's CPU under load. These calls never
// block, so they need not announce themselves.
//
// For a backend connection (newHeldIO) writes are held until the next
// read, which sends them and then waits for the answer on the poller
// without first trying a read: an answer cannot come before its request,
// so that read could only fail with EAGAIN.
type rawIO struct {
	c  net.Conn
	rc syscall.RawConn
	// hold makes Write keep its bytes in out for the next Read.
	hold bool
	out  []byte
}

// newRawIO returns an io.ReadWriter on c: raw system calls when c is a
// TCP connection, else c itself.
func newRawIO(c net.Conn) io.ReadWriter {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawIO{c: c, rc: rc}
}

// newHeldIO is newRawIO with writes held until the next read; only for
// connections where every write is a request followed by reading its
// answer.
func newHeldIO(c net.Conn) io.ReadWriter {
	rw := newRawIO(c)
	if r, ok := rw.(*rawIO); ok {
		r.hold = true
	}
	return rw
}

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n      int
		errno  syscall.Errno
		wrote  bool
		unsent = r.out // held bytes to send first
	)
	err := r.rc.Read(func(fd uintptr) bool {
		if len(unsent) > 0 {
			m, e := writeAll(fd, unsent)
			unsent = unsent[m:]
			switch e {
			case 0:
				return false // sent: wait for the answer
			case syscall.EAGAIN: // the socket is full: send sends the rest
			default:
				errno, wrote = e, true
			}
			return true
		}
		m, e := readOnce(fd, p)
		if e == syscall.EAGAIN {
			return false // wait for data
		}
		n, errno = m, e
		return true
	})
	if len(r.out) > 0 {
		r.out = r.out[:copy(r.out, unsent)]
	}
	switch {
	case err != nil:
		return 0, err
	case wrote:
		return 0, r.opError("write", errno)
	case errno != 0:
		return 0, r.opError("read", errno)
	case len(r.out) > 0: // rare: a request larger than the socket buffer
		_, err := r.send(r.out)
		r.out = r.out[:0]
		if err != nil {
			return 0, err
		}
		return r.Read(p)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawIO) Write(p []byte) (int, error) {
	if r.hold {
		r.out = append(r.out, p...)
		return len(p), nil
	}
	return r.send(p)
}

// send writes p whole, waiting on the poller while the socket is full.
func (r *rawIO) send(p []byte) (int, error) {
	var (
		n     int
		errno syscall.Errno
	)
	err := r.rc.Write(func(fd uintptr) bool {
		m, e := writeAll(fd, p[n:])
		n += m
		if e == syscall.EAGAIN {
			return false // the socket buffer is full: wait for room
		}
		errno = e
		return true
	})
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, r.opError("write", errno)
	}
	return n, nil
}

func (r *rawIO) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: errno}
}

// writeAll writes p to fd until all of it is written, the socket is full
// (EAGAIN) or the write fails; it returns how many bytes went out.
func writeAll(fd uintptr, p []byte) (int, syscall.Errno) {
	n := 0
	for n < len(p) {
		m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
		switch e {
		case 0:
			n += int(m)
		case syscall.EINTR:
		default:
			return n, e
		}
	}
	return n, 0
}

// readOnce reads once from fd into p (len(p) > 0), again on EINTR.
func readOnce(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		m, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			return int(m), 0
		case syscall.EINTR:
			continue
		}
		return 0, e
	}
}
