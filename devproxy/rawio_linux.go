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
type rawIO struct {
	c  net.Conn
	rc syscall.RawConn
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

func (r *rawIO) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var (
		n     int
		errno syscall.Errno
	)
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			m, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case 0:
				n = int(m)
				return true
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait for data
			}
			errno = e
			return true
		}
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: errno}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (r *rawIO) Write(p []byte) (int, error) {
	var (
		n     int
		errno syscall.Errno
	)
	err := r.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n))
			switch e {
			case 0:
				n += int(m)
				continue
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // the socket buffer is full: wait for room
			}
			errno = e
			return true
		}
		return true
	})
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, &net.OpError{Op: "write", Net: "tcp", Source: r.c.LocalAddr(), Addr: r.c.RemoteAddr(), Err: errno}
	}
	return n, nil
}
