//go:build linux || darwin || freebsd || netbsd || openbsd

package devproxy

import (
	"errors"
	"net"
	"syscall"
)

// clientGone reports whether the peer of c has closed the connection (or
// reset it), without consuming anything: a non-blocking MSG_PEEK of one
// byte on the socket. Bytes the client already sent (a pipelined request)
// mean it is still there.
func clientGone(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case rerr == nil:
			gone = n == 0 // orderly shutdown
		case errors.Is(rerr, syscall.EAGAIN), errors.Is(rerr, syscall.EINTR):
		default:
			gone = true // reset, or worse
		}
		return true // never wait
	})
	return gone || err != nil
}
