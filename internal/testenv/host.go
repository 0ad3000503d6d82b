package testenv

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartHost starts cmd, a stand-in for siteplex (the test binary
// re-executed), and waits at most timeout until it prints "READY <pid>…"
// on its standard output, then returns those want pids. A line starting
// with "host:" is the stand-in's own failure. Cleanup kills it. The tests
// of what a SIGKILLed siteplex leaves behind use it.
func StartHost(t testing.TB, cmd *exec.Cmd, want int, timeout time.Duration) []int {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") || strings.HasPrefix(sc.Text(), "host:") {
				lines <- sc.Text()
				return
			}
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(timeout):
		t.Fatalf("the host did not get ready within %s", timeout)
	}
	f := strings.Fields(line)
	if len(f) != want+1 || f[0] != "READY" {
		t.Fatalf("the host said %q, want READY and %d pids", line, want)
	}
	pids := make([]int, 0, want)
	for _, s := range f[1:] {
		pid, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("the host said %q: %q is not a pid", line, s)
		}
		pids = append(pids, pid)
	}
	return pids
}

// WaitGone waits at most d until alive reports none of pids, and returns
// those still alive then.
func WaitGone(pids []int, d time.Duration, alive func(pid int) bool) []int {
	deadline := time.Now().Add(d)
	for {
		var left []int
		for _, pid := range pids {
			if alive(pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}
