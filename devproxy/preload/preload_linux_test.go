package preload

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
	"github.com/siteplex/siteplex/internal/testenv"
)

// Eight sites forked from one warm parent each answer their own SITE_ID,
// each in its own session and process group, as children of the parent.
func TestForkEightSites(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	p, _ := startParent(t, dir)
	info := p.Info()
	if info.SiteIDKind != "int" || info.Settings != "fixtureproj.settings" || !strings.HasPrefix(info.Django, "3.2") {
		t.Errorf("Info = %+v, want SITE_ID kind int, settings fixtureproj.settings, Django 3.2", info)
	}
	var all []*site
	for id := int64(1); id <= 8; id++ {
		all = append(all, forkNoWait(t, p, id))
	}
	for _, s := range all {
		waitAccepting(t, s)
		w := testenv.GetWhoami(t, s.Addr(), "")
		if w.SiteID != s.id || w.PID != s.PID() {
			t.Errorf("site %d answered site_id %v from pid %d, want %d from pid %d", s.id, w.SiteID, w.PID, s.id, s.PID())
		}
		st := procStat(s.PID())
		if len(st) < 4 || st[1] != fmt.Sprint(p.PID()) || st[2] != fmt.Sprint(s.PID()) || st[3] != fmt.Sprint(s.PID()) {
			t.Errorf("site %d: ppid/pgrp/session = %v, want %d/%d/%d", s.id, st[1:4], p.PID(), s.PID(), s.PID())
		}
	}
	if got := len(p.Children()); got != 8 {
		t.Errorf("Children() = %d, want 8", got)
	}
}

// A child's stdout and stderr arrive on the writers given to Fork:
// runserver's banner on stdout, its request log on stderr.
func TestChildLogs(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	p, parentOut := startParent(t, dir)
	s := fork(t, p, 2)
	testenv.GetWhoami(t, s.Addr(), "")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.err.String(), `"GET /whoami/ HTTP/1.1" 200`) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	wantOut := []string{"Performing system checks...", "System check identified no issues (0 silenced).",
		"Django version 3.2", "Starting development server at http://" + s.Addr() + "/"}
	for _, w := range wantOut {
		if !strings.Contains(s.out.String(), w) {
			t.Errorf("child stdout lacks %q:\n%s", w, s.out)
		}
	}
	if !strings.Contains(s.err.String(), `"GET /whoami/ HTTP/1.1" 200`) {
		t.Errorf("child stderr lacks the request log line:\n%s", s.err)
	}
	if strings.Contains(parentOut.String(), "GET /whoami/") || strings.Contains(parentOut.String(), "Starting development server") {
		t.Errorf("the child's output leaked into the parent's:\n%s", parentOut)
	}
}

// kill -9 of a child: Wait reports 137, and the parent forks the site again.
func TestKillChild(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	p, _ := startParent(t, dir)
	s := fork(t, p, 3)
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	code, err := s.Wait()
	if code != 137 || err != nil {
		t.Fatalf("Wait after kill -9 = %d, %v; want 137, nil", code, err)
	}
	again := fork(t, p, 3)
	if w := testenv.GetWhoami(t, again.Addr(), ""); w.SiteID != 3 {
		t.Errorf("re-forked site answered %v", w.SiteID)
	}
}

// kill -9 of the parent: its children die with it (parent-death signal),
// their Wait says so, Fork fails with ErrParentGone, and a new parent boots.
func TestKillParent(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	p, _ := startParent(t, dir)
	a, b := fork(t, p, 1), fork(t, p, 2)
	if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*site{a, b} {
		code, err := s.Wait()
		if !errors.Is(err, ErrParentGone) || code != -1 {
			t.Errorf("site %d Wait = %d, %v; want -1 and ErrParentGone", s.id, code, err)
		}
	}
	if left := waitGone([]int{p.PID(), a.PID(), b.PID()}, 5*time.Second); len(left) > 0 {
		t.Fatalf("still alive after the parent's kill -9: %v", left)
	}
	<-p.Done()
	if err := p.Err(); !errors.Is(err, ErrParentGone) || !strings.Contains(err.Error(), "signal 9") {
		t.Errorf("Err = %v, want ErrParentGone naming signal 9", err)
	}
	_, err := p.Fork(context.Background(), ChildSpec{SiteID: 1, Port: testenv.MustFreePort(t)})
	if !errors.Is(err, ErrParentGone) {
		t.Errorf("Fork on a dead parent = %v, want ErrParentGone", err)
	}
	p2, _ := startParent(t, dir)
	if w := testenv.GetWhoami(t, fork(t, p2, 2).Addr(), ""); w.SiteID != 2 {
		t.Errorf("site from the new parent answered %v", w.SiteID)
	}
}

// Stop of a child: SIGTERM to its group; runserver dies of it (143).
func TestStopChild(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	p, _ := startParent(t, dir)
	s := fork(t, p, 1)
	if err := s.Stop(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if code, err := s.Wait(); code != 143 || err != nil {
		t.Errorf("Wait after Stop = %d, %v; want 143, nil", code, err)
	}
	if proc.Alive(s.PID()) {
		t.Errorf("child %d alive after Stop", s.PID())
	}
	// A child that exits by itself reports its status.
	d := fork(t, p, 2)
	_, _, _ = get(d.Addr(), "", "/die/?code=7")
	if code, err := d.Wait(); code != 7 || err != nil {
		t.Errorf("Wait after /die/?code=7 = %d, %v", code, err)
	}
	if !strings.Contains(d.out.String(), "exiting with 7") {
		t.Errorf("the child's last words are missing from its stdout:\n%s", d.out)
	}
}

// Close stops the children (SIGTERM, reported by the parent) and the parent.
func TestCloseParent(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	p, _ := startParent(t, dir)
	a, b := fork(t, p, 1), fork(t, p, 2)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*site{a, b} {
		if code, err := s.Wait(); code != 143 || err != nil {
			t.Errorf("site %d Wait after Close = %d, %v; want 143, nil", s.id, code, err)
		}
	}
	if left := waitGone([]int{p.PID(), a.PID(), b.PID()}, 0); len(left) > 0 {
		t.Errorf("alive after Close: %v", left)
	}
	if err := p.Err(); !errors.Is(err, ErrParentGone) || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Err after Close = %v", err)
	}
}

// The child's environment: Env overrides reach os.environ, and every
// forked process still shows the parent's exec-time environment in
// /proc/PID/environ, so the parent's SITEPLEX_PROC token finds them all
// (the pid-file sweep relies on it).
func TestChildEnvironment(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	p, _ := startParent(t, dir)
	s := fork(t, p, 5, "SITEPLEX_PROC=child-token", "FIXTURE_COLOR=teal")
	for k, want := range map[string]string{"FIXTURE_COLOR": "teal", "SITE_ID": "5", "SITEPLEX_PROC": "child-token"} {
		_, b, err := get(s.Addr(), "", "/env/?k="+k)
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("/env/?k=%s = %s, %v; want %q", k, b, err, want)
		}
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", s.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte("SITEPLEX_PROC=test-"+t.Name()+"\x00")) {
		t.Errorf("/proc/%d/environ lacks the parent's token", s.PID())
	}
}

// A Fork whose ctx ends before the reply returns ctx's error; the child
// the parent forked anyway is stopped, not leaked.
func TestForkAbandoned(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	p, _ := startParent(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := p.Fork(ctx, ChildSpec{SiteID: 1, Port: testenv.MustFreePort(t)})
	if !errors.Is(err, context.Canceled) || c != nil {
		t.Fatalf("Fork with a cancelled ctx = %v, %v; want context.Canceled", c, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(p.Children()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(p.Children()); n > 0 {
		t.Errorf("%d children left after an abandoned fork", n)
	}
	// The parent still forks.
	testenv.GetWhoami(t, fork(t, p, 2).Addr(), "")
}

// Without a pidfd, a child orphaned by its parent's death is watched
// through /proc: Wait returns once it is gone (a zombie counts as gone).
func TestOrphanWithoutPidfd(t *testing.T) {
	cmd := exec.Command("/bin/sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Wait() }()
	p := &Parent{}
	p.kids.Add(1)
	c := &Child{parent: p, pid: cmd.Process.Pid, pidfd: -1, out: &outputs{}, done: make(chan struct{})}
	go c.orphaned(fmt.Errorf("%w: test", ErrParentGone))
	code, err := c.Wait()
	if code != -1 || !errors.Is(err, ErrParentGone) {
		t.Errorf("Wait = %d, %v; want -1, ErrParentGone", code, err)
	}
	if proc.Alive(cmd.Process.Pid) {
		t.Errorf("the orphan %d is alive after Wait", cmd.Process.Pid)
	}
	p.kids.Wait()
}

// siteProc is the supervisor's process interface (PID, Addr, Wait, Stop): a
// Child must fit it as is.
type siteProc interface {
	PID() int
	Addr() string
	Wait() (code int, err error)
	Stop(ctx context.Context, grace time.Duration) error
}

var _ siteProc = (*Child)(nil)
