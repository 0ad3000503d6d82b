//go:build unix

package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
)

// outputDrainWait bounds how long Wait waits for a process's output pipes
// to reach EOF after the process (and its group) ended: a grandchild that
// left the group may hold them open forever.
const outputDrainWait = 2 * time.Second

// LocalRunner returns the Runner that starts site processes on this
// machine: argv (never a shell), its own process group, SIGKILL when
// siteplex dies (Pdeathsig on Linux) and a watchdog that SIGKILLs every
// group still listed when siteplex's end of a pipe closes, so grandchildren
// die with siteplex too, even when siteplex is SIGKILLed.
//
// The returned value also implements io.Closer: Close ends the watchdog
// (Supervisor.Close calls it for a local runner).
func LocalRunner() Runner { return &localRunner{} }

type localRunner struct {
	mu sync.Mutex // guards wd
	wd *watchdog
}

// Start starts spec.Argv in spec.Dir with spec.Env. Output goes to
// spec.Stdout/Stderr through pipes siteplex owns, so Wait never waits on a
// grandchild that keeps them open.
func (r *localRunner) Start(ctx context.Context, spec ProcessSpec) (Proc, error) {
	if len(spec.Argv) == 0 || spec.Argv[0] == "" {
		return nil, errors.New("empty command: set process.command in siteplex.toml or pass --command")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	wd := r.watchdog()

	cmd := exec.Command(spec.Argv[0], spec.Argv[1:]...)
	cmd.Dir = spec.Dir
	cmd.Env = spec.Env
	setProcAttr(cmd)

	stdout, stderr := spec.Stdout, spec.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("output pipe: %w", err)
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		outR.Close()
		outW.Close()
		errR.Close()
		errW.Close()
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) || errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("starting %s: %w (fix the command: --command, or process.command in siteplex.toml)", spec.Argv[0], err)
		}
		return nil, fmt.Errorf("starting %s: %w", spec.Argv[0], err)
	}
	outW.Close()
	errW.Close()

	p := &localProc{
		cmd:   cmd,
		pid:   cmd.Process.Pid,
		addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.Port)),
		done:  make(chan struct{}),
		wd:    wd,
		pipes: []*os.File{outR, errR},
	}
	if wd != nil {
		wd.add(p.pid)
	}
	p.copies.Add(2)
	go p.copyOutput(stdout, outR)
	go p.copyOutput(stderr, errR)
	go p.reap()
	return p, nil
}

// watchdog returns the runner's watchdog, starting it on first use; nil
// when it cannot start (best effort: without /bin/sh, Pdeathsig and
// pid-file sweeping remain).
func (r *localRunner) watchdog() *watchdog {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.wd == nil {
		r.wd, _ = startWatchdog()
	}
	return r.wd
}

// Close ends the watchdog: it SIGKILLs the groups still registered (none
// after a clean shutdown) and exits. A later Start starts a new one.
func (r *localRunner) Close() error {
	r.mu.Lock()
	wd := r.wd
	r.wd = nil
	r.mu.Unlock()
	if wd != nil {
		wd.close()
	}
	return nil
}

// localProc is one started process; its pid is also its process group id.
type localProc struct {
	cmd    *exec.Cmd
	pid    int
	addr   string
	wd     *watchdog
	copies sync.WaitGroup
	pipes  []*os.File

	done chan struct{} // closed when reaped and output drained
	code int
	err  error
}

func (p *localProc) PID() int     { return p.pid }
func (p *localProc) Addr() string { return p.addr }

// Wait returns the exit code once the process ended and its output was
// delivered. A process killed by a signal reports 128+signal, as shells do.
func (p *localProc) Wait() (int, error) {
	<-p.done
	return p.code, p.err
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace (or at
// once when ctx ends), and returns when the process is reaped.
func (p *localProc) Stop(ctx context.Context, grace time.Duration) error {
	proc.StopGroup(ctx, p.pid, p.done, grace)
	return nil
}

func (p *localProc) copyOutput(w io.Writer, r *os.File) {
	defer p.copies.Done()
	buf := make([]byte, 32<<10)
	_, _ = io.CopyBuffer(w, r, buf)
}

// reap waits for the process, kills what is left of its group, waits for
// the output to drain and closes done.
func (p *localProc) reap() {
	err := p.cmd.Wait()
	p.code, p.err = exitCode(p.cmd.ProcessState, err)
	// The group is the site's unit: leftovers (grandchildren) go with the
	// leader. The pgid cannot be reused while a member lives.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	drained := make(chan struct{})
	go p.waitCopies(drained)
	select {
	case <-drained:
	case <-time.After(outputDrainWait):
		for _, f := range p.pipes {
			f.Close()
		}
		<-drained
	}
	for _, f := range p.pipes {
		f.Close()
	}
	if p.wd != nil {
		p.wd.remove(p.pid)
	}
	close(p.done)
}

// waitCopies closes drained when both output copies have ended.
func (p *localProc) waitCopies(drained chan<- struct{}) {
	p.copies.Wait()
	close(drained)
}

func exitCode(ps *os.ProcessState, err error) (int, error) {
	if ps == nil {
		return -1, err
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ps.ExitCode(), nil
}

// watchdogScript keeps the set of live process groups it is told about on
// stdin ("+PGID", "-PGID") and SIGKILLs the remaining ones at EOF, which
// comes when siteplex closes the pipe or dies in any way (SIGKILL
// included). It is siteplex's own fixed script, never a user command.
const watchdogScript = `trap '' INT HUP
groups=' '
while IFS= read -r l; do
  case "$l" in
    +*) groups="$groups${l#+} " ;;
    -*) g=${l#-}; n=' '
        for x in $groups; do [ "$x" = "$g" ] || n="$n$x "; done
        groups=$n ;;
  esac
done
for g in $groups; do kill -KILL -"$g" 2>/dev/null; done
exit 0`

// watchdog is the helper process that outlives a SIGKILLed siteplex just
// long enough to kill its process groups.
type watchdog struct {
	cmd *exec.Cmd
	mu  sync.Mutex // guards w
	w   *os.File
}

func startWatchdog() (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", watchdogScript)
	cmd.Stdin = r
	// Own group (a Ctrl-C to siteplex's group does not reach it), no
	// Pdeathsig: it must run after siteplex is gone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, err
	}
	r.Close()
	return &watchdog{cmd: cmd, w: w}, nil
}

func (wd *watchdog) send(line string) {
	wd.mu.Lock()
	defer wd.mu.Unlock()
	if wd.w != nil {
		_, _ = wd.w.WriteString(line + "\n")
	}
}

func (wd *watchdog) add(pgid int)    { wd.send("+" + strconv.Itoa(pgid)) }
func (wd *watchdog) remove(pgid int) { wd.send("-" + strconv.Itoa(pgid)) }

func (wd *watchdog) close() {
	wd.mu.Lock()
	w := wd.w
	wd.w = nil
	wd.mu.Unlock()
	if w != nil {
		w.Close()
	}
	_ = wd.cmd.Wait()
}
