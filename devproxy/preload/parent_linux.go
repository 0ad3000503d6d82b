package preload

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// parentScript is the warm parent, run with the project's interpreter as
// `python - siteplex-preload` (the script on stdin, the socket on fd 3).
//
//go:embed parent.py
var parentScript string

const (
	// maxMsg bounds one datagram either way (a fork request with its
	// environment, a failure with its traceback).
	maxMsg = 256 << 10
	// outputDrainWait bounds how long a finished process's output pipes
	// may stay open (a grandchild that left the group can hold them).
	outputDrainWait = 2 * time.Second
	// parentExitWait is how long the parent may take to exit after its
	// socket closed, or after Stop's grace, before it is SIGKILLed.
	parentExitWait = 2 * time.Second
	// tailBytes of the parent's stderr are kept for failure reasons.
	tailBytes = 8 << 10
)

// message is one datagram from the parent (see parent.py's header).
type message struct {
	Op         string `json:"op"`
	ID         uint64 `json:"id"`
	PID        int    `json:"pid"`
	Code       int    `json:"code"`
	Reason     string `json:"reason"`
	Detail     string `json:"detail"`
	Fallback   bool   `json:"fallback"`
	Python     string `json:"python"`
	Django     string `json:"django"`
	Settings   string `json:"settings"`
	SiteIDKind string `json:"site_id_kind"`
	Overlay    bool   `json:"overlay"`
	BootMS     int64  `json:"boot_ms"`
}

type forkRequest struct {
	Op           string            `json:"op"`
	ID           uint64            `json:"id"`
	SiteID       int64             `json:"site_id"`
	Port         int               `json:"port"`
	Env          map[string]string `json:"env"`
	AllowedHosts []string          `json:"allowed_hosts"`
}

type closeRequest struct {
	Op      string `json:"op"`
	GraceMS int64  `json:"grace_ms"`
}

// Parent is a running warm parent. Its methods are safe for concurrent use.
type Parent struct {
	cmd  *exec.Cmd
	pid  int
	conn *net.UnixConn
	info Info
	out  outputs
	tail *tailWriter

	first    chan message  // the first "ready" or "fail"
	procDone chan struct{} // closed when the Python process is reaped
	done     chan struct{} // closed when the parent ended and Err is set
	kids     sync.WaitGroup

	wmu sync.Mutex // guards writes to conn (a request and its fds go together)

	mu       sync.Mutex // guards the fields below
	nextID   uint64
	pending  map[uint64]*pendingFork
	children map[int]*Child
	closing  bool
	err      error
}

type pendingFork struct {
	reply     chan forkReply // buffered: the reader never blocks on it
	addr      string
	out       *outputs
	abandoned bool // Fork gave up (its ctx ended); a late child is stopped
}

type forkReply struct {
	child *Child
	err   error
}

// StartParent boots a warm parent and returns once it is ready to fork
// (its Django loaded, its connections closed, its objects frozen). Every
// error is an *Unavailable: the caller starts sites the plain way and
// shows its Reason. ctx bounds the boot; it does not bound the parent's
// life (Stop or Close ends it, and it dies with this process).
func StartParent(ctx context.Context, spec ParentSpec) (*Parent, error) {
	if spec.Python == "" {
		return nil, &Unavailable{Reason: "no Python interpreter to preload with"}
	}
	manage := spec.ManagePy
	if manage == "" {
		manage = "manage.py"
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &Unavailable{Reason: fmt.Sprintf("socketpair: %v", err), Err: err}
	}
	ours := os.NewFile(uintptr(fds[0]), "preload-socket")
	theirs := os.NewFile(uintptr(fds[1]), "preload-socket-parent")
	fc, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, &Unavailable{Reason: fmt.Sprintf("preload socket: %v", err), Err: err}
	}
	conn := fc.(*net.UnixConn)

	env := spec.Env
	if env == nil {
		env = os.Environ()
	}
	env = append(env[:len(env):len(env)], "SITEPLEX_PRELOAD_MANAGE="+manage)
	cmd := exec.Command(spec.Python, "-", "siteplex-preload")
	cmd.Dir = spec.Dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(parentScript)
	cmd.ExtraFiles = []*os.File{theirs} // fd 3
	setParentAttr(cmd)

	p := &Parent{
		cmd:      cmd,
		conn:     conn,
		tail:     &tailWriter{w: spec.Stderr, max: tailBytes},
		first:    make(chan message, 1),
		procDone: make(chan struct{}),
		done:     make(chan struct{}),
		pending:  map[uint64]*pendingFork{},
		children: map[int]*Child{},
	}
	outW, errW, err := p.out.start(spec.Stdout, p.tail)
	if err != nil {
		theirs.Close()
		conn.Close()
		return nil, &Unavailable{Reason: err.Error(), Err: err}
	}
	cmd.Stdout, cmd.Stderr = outW, errW
	err = cmd.Start()
	// Only the parent may hold its end: its exit must read as EOF here.
	theirs.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		conn.Close()
		p.out.close()
		return nil, &Unavailable{Reason: fmt.Sprintf("starting %s: %v", spec.Python, err), Err: err}
	}
	p.pid = cmd.Process.Pid
	go p.reapProcess()
	go p.readLoop()

	select {
	case m := <-p.first:
		if m.Op == "ready" {
			p.info = Info{
				PID: p.pid, Python: m.Python, Django: m.Django, Settings: m.Settings,
				SiteIDKind: m.SiteIDKind, Overlay: m.Overlay, Boot: time.Duration(m.BootMS) * time.Millisecond,
			}
			return p, nil
		}
		p.kill()
		<-p.done
		return nil, p.unavailable(m.Reason, m.Detail, nil)
	case <-p.done:
		return nil, p.unavailable(fmt.Sprintf("the warm parent %s before it was ready", describeExit(cmd.ProcessState)), "", nil)
	case <-ctx.Done():
		p.kill()
		<-p.done
		return nil, p.unavailable(fmt.Sprintf("the warm parent was not ready in time (%v)", ctx.Err()), "", ctx.Err())
	}
}

// unavailable builds the error of a failed boot; without a detail from
// the parent, its last output lines are the detail and the last of them
// ends the reason.
func (p *Parent) unavailable(reason, detail string, err error) *Unavailable {
	if detail == "" {
		detail = p.tail.String()
		if l := lastLine(detail); l != "" {
			reason += ": " + l
		}
	}
	return &Unavailable{Reason: reason, Detail: detail, Err: err}
}

// PID is the parent's process id; it leads its own process group.
func (p *Parent) PID() int { return p.pid }

// Info describes the parent (set once StartParent returned it).
func (p *Parent) Info() Info { return p.info }

// Done is closed when the parent process has ended (Stop, a crash, a
// kill); Err then says why.
func (p *Parent) Done() <-chan struct{} { return p.done }

// Err is nil while the parent runs, then an error wrapping ErrParentGone.
func (p *Parent) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Children returns the children that have not ended yet.
func (p *Parent) Children() []*Child {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*Child, 0, len(p.children))
	for _, c := range p.children {
		out = append(out, c)
	}
	return out
}

// Fork starts one site's process from the parent and returns once the
// child leads its own session and process group, has its parent-death
// signal armed and its output on spec's writers; it then boots as
// runserver does and accepts connections on 127.0.0.1:spec.Port shortly
// after. Errors: one wrapping ErrParentGone when the parent ended (boot a
// new one), an *Unavailable when this parent can no longer fork safely
// (start the site the plain way), or ctx's error. A child whose reply
// comes after ctx ended is stopped.
func (p *Parent) Fork(ctx context.Context, spec ChildSpec) (*Child, error) {
	if spec.Port <= 0 || spec.Port > 65535 {
		return nil, fmt.Errorf("fork: port %d out of range", spec.Port)
	}
	env := make(map[string]string, len(spec.Env))
	for _, kv := range spec.Env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("fork: environment entry %q is not KEY=VALUE", kv)
		}
		env[k] = v
	}
	out := &outputs{}
	outW, errW, err := out.start(spec.Stdout, spec.Stderr)
	if err != nil {
		return nil, fmt.Errorf("fork: %w", err)
	}
	pf := &pendingFork{
		reply: make(chan forkReply, 1),
		addr:  net.JoinHostPort("127.0.0.1", fmt.Sprint(spec.Port)),
		out:   out,
	}

	p.mu.Lock()
	if p.err != nil || p.closing {
		err := p.err
		p.mu.Unlock()
		outW.Close()
		errW.Close()
		out.close()
		if err == nil {
			err = fmt.Errorf("%w: it is being stopped", ErrParentGone)
		}
		return nil, err
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = pf
	p.mu.Unlock()

	req, err := json.Marshal(forkRequest{Op: "fork", ID: id, SiteID: spec.SiteID, Port: spec.Port, Env: env, AllowedHosts: spec.AllowedHosts})
	if err == nil && len(req) > maxMsg-1024 {
		err = fmt.Errorf("fork: the request is %d bytes (environment too large; at most %d)", len(req), maxMsg-1024)
	}
	if err == nil {
		p.wmu.Lock()
		_, _, err = p.conn.WriteMsgUnix(req, unix.UnixRights(int(outW.Fd()), int(errW.Fd())), nil)
		p.wmu.Unlock()
		if err != nil {
			err = fmt.Errorf("%w: sending the fork request: %v", ErrParentGone, err)
		}
	}
	outW.Close()
	errW.Close()
	if err != nil {
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		go out.finish()
		return nil, err
	}

	select {
	case r := <-pf.reply:
		return r.child, r.err
	case <-ctx.Done():
	}
	p.mu.Lock()
	_, still := p.pending[id]
	pf.abandoned = still
	p.mu.Unlock()
	if !still { // the reply raced ctx: undo it
		if r := <-pf.reply; r.child != nil {
			go r.child.Stop(context.Background(), 0)
		}
	}
	return nil, fmt.Errorf("fork: %w", ctx.Err())
}

// Stop ends the parent: every child still running gets SIGTERM to its
// group, then SIGKILL after grace; the parent exits. When ctx ends, or
// the parent does not exit within grace plus two seconds, its group is
// SIGKILLed (and its children die with it). Stop returns when the parent
// and every child it forked have ended and their output was delivered.
func (p *Parent) Stop(ctx context.Context, grace time.Duration) error {
	p.mu.Lock()
	first := !p.closing
	p.closing = true
	p.mu.Unlock()
	if first {
		b, _ := json.Marshal(closeRequest{Op: "close", GraceMS: grace.Milliseconds()})
		p.wmu.Lock()
		_, _, _ = p.conn.WriteMsgUnix(b, nil, nil)
		_ = p.conn.CloseWrite()
		p.wmu.Unlock()
	}
	t := time.NewTimer(grace + parentExitWait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.kill()
	case <-ctx.Done():
		p.kill()
	}
	<-p.done
	p.kids.Wait()
	return nil
}

// Close is Stop with DefaultGrace.
func (p *Parent) Close() error { return p.Stop(context.Background(), DefaultGrace) }

// kill SIGKILLs the parent's process group; its children get their
// parent-death signal.
func (p *Parent) kill() { _ = syscall.Kill(-p.pid, syscall.SIGKILL) }

func (p *Parent) reapProcess() {
	_ = p.cmd.Wait()
	close(p.procDone)
}

// readLoop reads the parent's datagrams until its socket closes, then
// records the parent's end.
func (p *Parent) readLoop() {
	buf := make([]byte, maxMsg)
	oob := make([]byte, unix.CmsgSpace(8*4))
	for {
		n, oobn, _, _, err := p.conn.ReadMsgUnix(buf, oob)
		fds := parseRights(oob[:oobn])
		if err != nil || n == 0 {
			closeFDs(fds)
			break
		}
		var m message
		if json.Unmarshal(buf[:n], &m) != nil {
			closeFDs(fds)
			continue
		}
		p.handle(m, fds)
	}
	p.gone()
}

// handle dispatches one message; fds are its SCM_RIGHTS descriptors.
func (p *Parent) handle(m message, fds []int) {
	switch m.Op {
	case "ready", "fail":
		closeFDs(fds)
		select {
		case p.first <- m:
		default:
		}
	case "forked":
		pidfd := -1
		if len(fds) > 0 {
			pidfd = fds[0]
			closeFDs(fds[1:])
		}
		p.mu.Lock()
		pf := p.pending[m.ID]
		delete(p.pending, m.ID)
		if pf == nil || m.PID <= 0 {
			p.mu.Unlock()
			closeFDs([]int{pidfd})
			if m.PID > 0 {
				_ = syscall.Kill(-m.PID, syscall.SIGKILL)
			}
			return
		}
		c := &Child{parent: p, pid: m.PID, addr: pf.addr, pidfd: pidfd, out: pf.out, done: make(chan struct{})}
		p.children[m.PID] = c
		p.kids.Add(1)
		abandoned := pf.abandoned
		p.mu.Unlock()
		pf.reply <- forkReply{child: c}
		if abandoned {
			go c.Stop(context.Background(), 0)
		}
	case "error":
		closeFDs(fds)
		p.mu.Lock()
		pf := p.pending[m.ID]
		delete(p.pending, m.ID)
		p.mu.Unlock()
		if pf == nil {
			return
		}
		go pf.out.finish()
		var err error
		if m.Fallback {
			err = &Unavailable{Reason: m.Reason}
		} else {
			err = fmt.Errorf("fork: %s", m.Reason)
		}
		pf.reply <- forkReply{err: err}
	case "exit":
		closeFDs(fds)
		p.mu.Lock()
		c := p.children[m.PID]
		delete(p.children, m.PID)
		p.mu.Unlock()
		if c != nil {
			go c.finish(m.Code, nil)
		}
	default:
		closeFDs(fds)
	}
}

// gone runs once the socket closed: the parent is exiting. It waits for
// it, records why it ended, fails pending forks and waits for the
// children it left (they get SIGKILL from their parent-death signal).
func (p *Parent) gone() {
	select {
	case <-p.procDone:
	case <-time.After(parentExitWait):
		p.kill()
		<-p.procDone
	}
	p.out.finish()
	p.conn.Close()
	p.mu.Lock()
	what := describeExit(p.cmd.ProcessState)
	if p.closing {
		what = "stopped (" + what + ")"
	}
	p.err = fmt.Errorf("%w: pid %d %s", ErrParentGone, p.pid, what)
	err := p.err
	pending := p.pending
	p.pending = map[uint64]*pendingFork{}
	kids := p.children
	p.children = map[int]*Child{}
	p.mu.Unlock()
	for _, pf := range pending {
		go pf.out.finish()
		pf.reply <- forkReply{err: err}
	}
	for _, c := range kids {
		go c.orphaned(err)
	}
	close(p.done)
}

// describeExit says how a process ended, for messages.
func describeExit(ps *os.ProcessState) string {
	if ps == nil {
		return "ended"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Sprintf("was killed by signal %d (%v)", int(ws.Signal()), ws.Signal())
	}
	return fmt.Sprintf("exited with status %d", ps.ExitCode())
}

// parseRights returns the descriptors passed in oob (SCM_RIGHTS).
func parseRights(oob []byte) []int {
	if len(oob) == 0 {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if r, err := unix.ParseUnixRights(&m); err == nil {
			for _, fd := range r {
				unix.CloseOnExec(fd)
			}
			fds = append(fds, r...)
		}
	}
	return fds
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
