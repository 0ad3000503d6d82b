//go:build !linux

package devproxy

import (
	"io"
	"net"
)

// newRawIO returns c: raw system calls are used on Linux only.
func newRawIO(c net.Conn) io.ReadWriter { return c }

// newHeldIO returns c.
func newHeldIO(c net.Conn) io.ReadWriter { return c }
