package supervisor

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
)

// startGroup starts a child (with a grandchild) in its own process group
// with token in its environment, the way the supervisor does.
func svStartGroup(t *testing.T, dir, token, siteID string) (pid, gpid int) {
	t.Helper()
	argv := svChildCmd(t, "grandchild")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), procTokenEnv+"="+token, "SITE_ID="+siteID, "PORT=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	return svReadFamily(t, dir, svAtoi(siteID))
}

func svAtoi(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

func TestSweepStale(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, ".siteplex")

	// A dead owner: its group must go.
	deadOwner := exec.Command("true")
	if err := deadOwner.Run(); err != nil {
		t.Fatal(err)
	}
	pid, gpid := svStartGroup(t, dir, "stale-token", "1")
	p1, err := writePidFile(state, pidRecord{PID: pid, PGID: pid, Token: "stale-token", Slug: "one"})
	if err != nil {
		t.Fatal(err)
	}
	svRewriteOwner(t, p1, deadOwner.Process.Pid)

	// A live owner (another siteplex): left alone.
	liveOwner := exec.Command("sleep", "30")
	if err := liveOwner.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { liveOwner.Process.Kill(); liveOwner.Wait() }()
	lpid, lgpid := svStartGroup(t, dir, "live-token", "2")
	p2, err := writePidFile(state, pidRecord{PID: lpid, PGID: lpid, Token: "live-token", Slug: "two"})
	if err != nil {
		t.Fatal(err)
	}
	svRewriteOwnerStart(t, p2, liveOwner.Process.Pid, proc.Start(liveOwner.Process.Pid))

	// Garbage is removed without killing anything.
	junk := filepath.Join(state, "pids", "junk.pid")
	_ = os.WriteFile(junk, []byte("not json"), 0o644)

	killed, err := SweepStale(state)
	if err != nil {
		t.Fatal(err)
	}
	if killed != 2 {
		t.Errorf("killed %d, want 2 (the child and its grandchild)", killed)
	}
	svWaitFor(t, 3*time.Second, "the stale group to die", func() bool { return !proc.Alive(pid) && !proc.Alive(gpid) })
	if !proc.Alive(lpid) || !proc.Alive(lgpid) {
		t.Error("the sweep killed processes of a live siteplex")
	}
	for p, want := range map[string]bool{p1: false, p2: true, junk: false} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	if n, err := SweepStale(filepath.Join(dir, "nothing-here")); n != 0 || err != nil {
		t.Errorf("missing folder: %d, %v", n, err)
	}
}

func svRewriteOwner(t *testing.T, path string, owner int) { svRewriteOwnerStart(t, path, owner, 0) }

func svRewriteOwnerStart(t *testing.T, path string, owner int, start uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rec pidRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec.Owner, rec.OwnerStart = owner, start
	b, _ = json.Marshal(rec)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
