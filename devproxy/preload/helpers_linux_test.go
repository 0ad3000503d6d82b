package preload

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
	"github.com/siteplex/siteplex/internal/testenv"
)

// The tests run the real Django 3.2 fixture (testdata/django, see its
// README: /whoami/ answers settings.SITE_ID, /env/ the environment, /die/
// ends the process) with Debian's /usr/bin/python3.

// appendFile appends text to dir/rel.
func appendFile(t testing.TB, dir, rel, text string) { testenv.AppendFile(t, dir, rel, text) }

func writeFile(t testing.TB, dir, rel, text string) {
	t.Helper()
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// parentEnv is a site process's environment without the site: what the
// supervisor gives plain processes, plus a proc token.
func parentEnv(token string, extra ...string) []string {
	env := append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "SITEPLEX_PROC="+token)
	return append(env, extra...)
}

// startParent boots a warm parent on dir; Close runs at cleanup.
func startParent(t testing.TB, dir string, extraEnv ...string) (*Parent, *testenv.Buffer) {
	t.Helper()
	out := &testenv.Buffer{}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := StartParent(ctx, ParentSpec{
		Python: testenv.Python, Dir: dir, Env: parentEnv("test-"+t.Name(), extraEnv...),
		Stdout: out, Stderr: out,
	})
	if err != nil {
		t.Fatalf("StartParent: %v\ndetail:\n%s", err, detailOf(err))
	}
	t.Cleanup(func() { _ = p.Close() })
	return p, out
}

func detailOf(err error) string {
	if u, ok := err.(*Unavailable); ok {
		return u.Detail
	}
	return ""
}

// site is a forked child with its output.
type site struct {
	*Child
	id       int64
	out, err *testenv.Buffer
}

// fork forks site id on a free port and waits until it accepts.
func fork(t testing.TB, p *Parent, id int64, env ...string) *site {
	t.Helper()
	s := forkNoWait(t, p, id, env...)
	waitAccepting(t, s)
	return s
}

func forkNoWait(t testing.TB, p *Parent, id int64, env ...string) *site {
	t.Helper()
	port := testenv.MustFreePort(t)
	s := &site{id: id, out: &testenv.Buffer{}, err: &testenv.Buffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env = append([]string{"SITE_ID=" + strconv.FormatInt(id, 10), "PORT=" + strconv.Itoa(port)}, env...)
	c, err := p.Fork(ctx, ChildSpec{SiteID: id, Port: port, Env: env, Stdout: s.out, Stderr: s.err})
	if err != nil {
		t.Fatalf("Fork site %d: %v", id, err)
	}
	s.Child = c
	t.Cleanup(func() { _ = c.Stop(context.Background(), time.Second) })
	return s
}

// waitAccepting polls the child's port until it accepts, failing the test
// when the child exits first or after a minute.
func waitAccepting(t testing.TB, s *site) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.Done():
			code, werr := s.Wait()
			t.Fatalf("site %d exited (%d, %v) before accepting\nstdout:\n%s\nstderr:\n%s", s.id, code, werr, s.out, s.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("site %d not accepting on %s after a minute\nstdout:\n%s\nstderr:\n%s", s.id, s.Addr(), s.out, s.err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// get fetches path from addr with Host host ("" = addr) and returns the
// status and body.
func get(addr, host, path string) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// procStat returns /proc/pid/stat fields after "(comm)": state, ppid,
// pgrp, session, …
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	return strings.Fields(string(b[i+1:]))
}

// waitGone waits up to d for every pid to be gone (a zombie is gone) and
// returns those still alive.
func waitGone(pids []int, d time.Duration) []int {
	return testenv.WaitGone(pids, d, proc.Alive)
}
