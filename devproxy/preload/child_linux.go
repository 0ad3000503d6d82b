package preload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
)

// Child is one site's process, forked from a Parent. It is not this
// process's child (the warm parent is its parent and reaps it): its exit
// status comes from the parent over the socket, or, when the parent died,
// from its pidfd. Its pid is also its process group and session id.
type Child struct {
	parent *Parent
	pid    int
	addr   string
	pidfd  int // -1 when the kernel or Python had no pidfd_open
	out    *outputs

	once sync.Once
	done chan struct{} // closed when ended and output delivered
	code int
	err  error
}

// PID is the child's process id (= its process group id).
func (c *Child) PID() int { return c.pid }

// Addr is host:port to proxy to.
func (c *Child) Addr() string { return c.addr }

// Done is closed when the child ended and its output was delivered.
func (c *Child) Done() <-chan struct{} { return c.done }

// Wait blocks until the child ended and its output was delivered, and
// returns its exit code: 128+N when signal N killed it (kill -9 is 137),
// as shells and the local runner report it. When the warm parent died
// first, nobody could collect the status: the code is -1 and err wraps
// ErrParentGone.
func (c *Child) Wait() (int, error) {
	<-c.done
	return c.code, c.err
}

// Stop sends SIGTERM to the child's process group, then SIGKILL after
// grace (or at once when ctx ends), and returns when the child ended.
func (c *Child) Stop(ctx context.Context, grace time.Duration) error {
	proc.StopGroup(ctx, c.pid, c.done, grace)
	return nil
}

// finish records the exit (the parent already SIGKILLed what was left of
// the group), waits for the output and closes done.
func (c *Child) finish(code int, err error) {
	c.once.Do(func() {
		c.out.finish()
		closeFDs([]int{c.pidfd})
		c.code, c.err = code, err
		close(c.done)
		c.parent.kids.Done()
	})
}

// orphaned runs when the parent died while the child ran: the kernel sends
// the child SIGKILL (its parent-death signal); its group goes too, and
// done closes once the child is gone.
func (c *Child) orphaned(cause error) {
	_ = syscall.Kill(-c.pid, syscall.SIGKILL)
	c.awaitExit()
	c.finish(-1, fmt.Errorf("child %d ended with the warm parent: %w", c.pid, cause))
}

// awaitExit returns once the child has terminated: its pidfd is readable
// then, exactly; without one, /proc tells (a zombie counts as gone).
func (c *Child) awaitExit() {
	if c.pidfd >= 0 {
		fds := []unix.PollFd{{Fd: int32(c.pidfd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, 1000)
			if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
				return
			}
		}
	}
	for proc.Alive(c.pid) {
		time.Sleep(10 * time.Millisecond)
	}
}

// setParentAttr puts the warm parent in its own process group (a Ctrl-C
// to siteplex's group does not reach it; Stop can kill the group) and has
// the kernel send it SIGTERM when siteplex dies: the parent then SIGKILLs
// its children's groups, grandchildren included, and exits. (Pdeathsig
// fires when the thread that forked it exits; Go ends threads only for
// goroutines that exit while locked to them, which StartParent never
// does.) Should the parent not die of it, it sees its socket close and
// stops all the same.
func setParentAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// outputs copies a process's stdout and stderr pipes to their writers.
type outputs struct {
	pipes  []*os.File // read ends
	copies sync.WaitGroup
}

// start makes the two pipes and starts copying; it returns the write ends
// for the process (the caller closes them once handed over).
func (o *outputs) start(stdout, stderr io.Writer) (outW, errW *os.File, err error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, fmt.Errorf("output pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, fmt.Errorf("output pipe: %w", err)
	}
	o.pipes = []*os.File{outR, errR}
	o.copies.Add(2)
	go o.copy(stdout, outR)
	go o.copy(stderr, errR)
	return outW, errW, nil
}

func (o *outputs) copy(w io.Writer, r *os.File) {
	defer o.copies.Done()
	if w == nil {
		w = io.Discard
	}
	buf := make([]byte, 32<<10)
	_, _ = io.CopyBuffer(w, r, buf)
}

// finish waits until both pipes reached EOF (at most outputDrainWait;
// then it closes them) and closes them.
func (o *outputs) finish() {
	drained := make(chan struct{})
	go o.wait(drained)
	select {
	case <-drained:
	case <-time.After(outputDrainWait):
		o.close()
		<-drained
	}
	o.close()
}

func (o *outputs) wait(drained chan<- struct{}) {
	o.copies.Wait()
	close(drained)
}

func (o *outputs) close() {
	for _, f := range o.pipes {
		f.Close()
	}
}

// tailWriter passes writes on to w (nil = nowhere) and keeps the last max
// bytes for error messages.
type tailWriter struct {
	w   io.Writer
	max int

	mu  sync.Mutex // guards buf
	buf []byte
}

func (t *tailWriter) Write(b []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	t.mu.Unlock()
	if t.w != nil {
		return t.w.Write(b)
	}
	return len(b), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lastLine is s's last non-blank line, trimmed.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}
