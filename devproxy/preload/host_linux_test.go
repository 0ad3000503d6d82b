package preload

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
	"github.com/siteplex/siteplex/internal/testenv"
)

// The SIGKILL test runs a stand-in for siteplex by re-executing the test
// binary: `<test binary> -test.run=^TestPreloadHost$ -- preload-host DIR`.
const hostMarker = "preload-host"

func hostArgs() []string {
	for i, a := range os.Args {
		if a == "--" && i+1 < len(os.Args) && os.Args[i+1] == hostMarker {
			return os.Args[i+2:]
		}
	}
	return nil
}

// spawnView is added to the fixture's URLconf: /spawn/ starts a process in
// the site's group that ignores SIGTERM, and answers its pid.
const spawnView = `
import subprocess
from django.http import HttpResponse

def spawn(request):
    p = subprocess.Popen(["/bin/sh", "-c", "trap '' TERM; while :; do sleep 1; done"])
    return HttpResponse(str(p.pid))

urlpatterns.append(path("spawn/", spawn))
`

// TestPreloadHost is not a test: it is the "siteplex" that
// TestSIGKILLedHostLeavesNothing kills, and returns at once in a normal
// run. It boots a warm parent on the project named in its arguments,
// forks two sites, has the first start a grandchild, prints
// "READY <parent> <child> <child> <grandchild>" and sleeps.
func TestPreloadHost(t *testing.T) {
	args := hostArgs()
	if args == nil {
		return
	}
	ctx := context.Background()
	p, err := StartParent(ctx, ParentSpec{Python: testenv.Python, Dir: args[0], Env: parentEnv("host"), Stderr: os.Stderr})
	if err != nil {
		fmt.Println("host:", err)
		os.Exit(1)
	}
	pids := []string{strconv.Itoa(p.PID())}
	var first *Child
	for _, id := range []int64{1, 2} {
		c, err := p.Fork(ctx, ChildSpec{SiteID: id, Port: testenv.MustFreePort(t), Stderr: os.Stderr})
		if err != nil {
			fmt.Println("host:", err)
			os.Exit(1)
		}
		if first == nil {
			first = c
		}
		pids = append(pids, strconv.Itoa(c.PID()))
		waitAccepting(t, &site{Child: c, id: id, out: &testenv.Buffer{}, err: &testenv.Buffer{}})
	}
	_, b, err := get(first.Addr(), "", "/spawn/")
	if err != nil {
		fmt.Println("host:", err)
		os.Exit(1)
	}
	fmt.Println("READY " + strings.Join(pids, " ") + " " + strings.TrimSpace(string(b)))
	time.Sleep(time.Hour)
	os.Exit(0)
}

// SIGKILL of siteplex leaves no process alive after 5 s: the warm parent
// gets its parent-death signal and SIGKILLs its children's groups (a
// grandchild that ignores SIGTERM included); the children also get theirs.
func TestSIGKILLedHostLeavesNothing(t *testing.T) {
	dir := testenv.DjangoFixture(t, "django", false)
	appendFile(t, dir, "fixtureproj/urls.py", spawnView)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestPreloadHost$", "--", hostMarker, dir)
	cmd.Stderr = os.Stderr
	pids := testenv.StartHost(t, cmd, 4, 2*time.Minute)
	for _, pid := range pids {
		if !proc.Alive(pid) {
			t.Fatalf("the host reported pid %d, which does not run", pid)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if left := waitGone(pids, 5*time.Second); len(left) > 0 {
		t.Fatalf("alive 5s after SIGKILL of the host: %v (parent, children, grandchild = %v)", left, pids)
	}
	t.Logf("parent, 2 children and a grandchild gone %s after the host's SIGKILL", time.Since(start).Round(time.Millisecond))
}
