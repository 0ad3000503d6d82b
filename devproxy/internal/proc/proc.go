//go:build unix

// Package proc answers two questions about another process on this
// machine: is it alive, and is it still the same process (its start time),
// so that a pid recorded in a file is not mistaken for an unrelated
// process that got the same pid later. The supervisor's pid files and the
// engine's engine.json use it. It also stops a site's process group the
// one way the local runner and the preload children both do.
package proc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopGroup sends SIGTERM to the process group pgid, then SIGKILL after
// grace (or at once when ctx ends), and returns once done is closed: the
// caller closes it when the group's leader has ended. When done is
// already closed it returns at once and signals nothing.
func StopGroup(ctx context.Context, pgid int, done <-chan struct{}, grace time.Duration) {
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-done
}

// Alive reports whether pid is a running process (a zombie is not; a
// process of another user is).
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if f := statFields(pid); len(f) > 0 && f[0] == "Z" {
		return false
	}
	return true
}

// Start is pid's start time in clock ticks since boot (/proc/<pid>/stat
// field 22), 0 when unknown (no /proc, as on macOS).
func Start(pid int) uint64 {
	f := statFields(pid)
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0
	}
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

// Parent is pid's parent process id (/proc/<pid>/stat field 4), 0 when
// unknown. The preload tests use it to tell a forked child's warm parent.
func Parent(pid int) int {
	f := statFields(pid)
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// Same reports whether pid is alive and is the process that started at
// start (a start time from Start); without /proc, alive is enough.
func Same(pid int, start uint64) bool {
	if !Alive(pid) {
		return false
	}
	now := Start(pid)
	return now == 0 || now == start
}

// statFields returns /proc/<pid>/stat's fields after "(comm)", nil when
// it cannot be read.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}
