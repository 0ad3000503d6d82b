package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/sites"

	"github.com/siteplex/siteplex/devproxy/internal/proc"
)

// testSites are three routed sites for the Go-child tests.
func svSites() []sites.Site {
	return []sites.Site{
		{ID: 1, Slug: "one", Domain: "one.test", Env: map[string]string{"PER_SITE": "first"}},
		{ID: 2, Slug: "two", Domain: "two.test"},
		{ID: 3, Slug: "three", Domain: "three.test"},
	}
}

// newTestProject makes a project folder with an env file holding envFile.
func svProject(t testing.TB, envFile string) *sites.Project {
	t.Helper()
	dir := t.TempDir()
	if envFile != "" {
		if err := os.WriteFile(filepath.Join(dir, ".env"), []byte(envFile), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := sites.Load(sites.Options{Project: dir})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// events records what the supervisor emits.
type svEvents struct {
	mu  sync.Mutex
	all []Event
}

func (e *svEvents) emit(ev Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *svEvents) states(slug string) []State {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []State
	for _, ev := range e.all {
		if ev.Kind == EventState && ev.Site.Slug == slug {
			out = append(out, ev.Site.State)
		}
	}
	return out
}

// newTestSupervisor builds a supervisor over testSites and closes it at
// the end of the test.
func newSvSupervisor(t *testing.T, cfg Config) (*Supervisor, *svEvents) {
	t.Helper()
	if cfg.Project == nil {
		cfg.Project = svProject(t, "")
	}
	ev := &svEvents{}
	s := New(cfg, ev.emit)
	s.SetSites(svSites(), 0)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, ev
}

func svSite(t testing.TB, slug string) *sites.Site {
	t.Helper()
	list := svSites()
	st, ok := sites.Find(list, slug)
	if !ok {
		t.Fatalf("no test site %s", slug)
	}
	return st
}

func svStatus(t testing.TB, s *Supervisor, slug string) SiteStatus {
	t.Helper()
	for _, st := range s.Statuses() {
		if st.Slug == slug {
			return st
		}
	}
	t.Fatalf("no status for %s in %+v", slug, s.Statuses())
	return SiteStatus{}
}

// waitFor polls cond until it holds or d passes.
func svWaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func svGet(t testing.TB, addr, query string) svChildReply {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/?" + query)
	if err != nil {
		t.Fatalf("GET %s: %v", addr, err)
	}
	defer resp.Body.Close()
	var r svChildReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("decoding the child's reply: %v", err)
	}
	return r
}

func svLogTexts(s *Supervisor, slug string) []string {
	var out []string
	for _, l := range s.Logs(slug, 0) {
		out = append(out, l.Text)
	}
	return out
}

func svCountPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func TestSupervisorLazyStartEnvAndPlaceholders(t *testing.T) {
	p := svProject(t, "FROM_ENV_FILE=yes\nSITE_ID=9\n")
	cmd := append(svChildCmd(t, "serve"), "{site_id}", "{slug}", "{domain}", "{root}", "port={port}")
	s, ev := newSvSupervisor(t, Config{Project: p, Command: cmd})

	if st := svStatus(t, s, "one"); st.State != Stopped || st.PID != 0 {
		t.Fatalf("before the first request: %+v, want stopped without pid", st)
	}
	addr, release, err := s.Acquire(context.Background(), svSite(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	r := svGet(t, addr, "env=SITE_ID&env=PORT&env=PYTHONUNBUFFERED&env=FROM_ENV_FILE&env=PER_SITE&env=HOME")
	wantEnv := map[string]string{
		"SITE_ID": "1", "PORT": strings.TrimPrefix(addr, "127.0.0.1:"), "PYTHONUNBUFFERED": "1",
		"FROM_ENV_FILE": "yes", "PER_SITE": "first", "HOME": os.Getenv("HOME"),
	}
	for k, v := range wantEnv {
		if r.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, r.Env[k], v)
		}
	}
	wantTail := []string{"1", "one", "one.test", p.Root, "port=" + wantEnv["PORT"]}
	if got := r.Args[len(r.Args)-5:]; !slices.Equal(got, wantTail) {
		t.Errorf("argv tail = %q, want %q", got, wantTail)
	}
	st := svStatus(t, s, "one")
	if st.State != Running || st.PID != r.PID || strconv.Itoa(st.Port) != wantEnv["PORT"] || st.StartedAt.IsZero() {
		t.Errorf("status = %+v, want running with pid %d", st, r.PID)
	}
	if other := svStatus(t, s, "two"); other.State != Stopped {
		t.Errorf("site two = %s, want stopped (lazy)", other.State)
	}
	if got := ev.states("one"); !slices.Contains(got, Starting) || got[len(got)-1] != Running {
		t.Errorf("state events = %v, want starting … running", got)
	}

	// Output and lifecycle lines reach the ring and the log file.
	svWaitFor(t, 5*time.Second, "the child's output in the log", func() bool {
		return slices.Contains(svLogTexts(s, "one"), "child: a line on stderr")
	})
	lines := svLogTexts(s, "one")
	if svCountPrefix(lines, "starting: ") != 1 {
		t.Errorf("log lines %q: want one starting line", lines)
	}
	b, err := os.ReadFile(filepath.Join(p.StateDir(), "logs", "one.log"))
	if err != nil || !strings.Contains(string(b), "child: serving on port") || !strings.Contains(string(b), "siteplex: starting: ") {
		t.Errorf("log file: %v\n%s", err, b)
	}
	pids, _ := filepath.Glob(filepath.Join(p.StateDir(), "pids", "one-*.pid"))
	if len(pids) != 1 {
		t.Errorf("pid files = %v, want one", pids)
	}
	release()
	if err := s.Stop(context.Background(), "one"); err != nil {
		t.Fatal(err)
	}
	if st := svStatus(t, s, "one"); st.State != Stopped || st.PID != 0 {
		t.Errorf("after Stop: %+v", st)
	}
	if proc.Alive(r.PID) {
		t.Errorf("pid %d alive after Stop", r.PID)
	}
	pids, _ = filepath.Glob(filepath.Join(p.StateDir(), "pids", "*.pid"))
	if len(pids) != 0 {
		t.Errorf("pid files left after Stop: %v", pids)
	}
}

func TestSupervisorConcurrentAcquireStartsOnce(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "serve")})
	const n = 20
	addrs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			addr, release, err := s.Acquire(context.Background(), svSite(t, "two"))
			addrs[i], errs[i] = addr, err
			if err == nil {
				release()
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || addrs[i] != addrs[0] {
			t.Fatalf("caller %d: %q %v; caller 0: %q", i, addrs[i], errs[i], addrs[0])
		}
	}
	s.logs.sync()
	if got := svCountPrefix(svLogTexts(s, "two"), "starting: "); got != 1 {
		t.Errorf("%d processes started for 20 concurrent first requests, want 1", got)
	}
	if st := svStatus(t, s, "two"); st.Restarts != 0 || st.State != Running {
		t.Errorf("status %+v", st)
	}
}

func TestSupervisorCrashRestartsOnNextAcquire(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "serve")})
	addr, release, err := s.Acquire(context.Background(), svSite(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	first := svGet(t, addr, "")
	release()
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	svWaitFor(t, 5*time.Second, "state crashed", func() bool { return svStatus(t, s, "one").State == Crashed })
	st := svStatus(t, s, "one")
	if st.LastExit == nil || *st.LastExit != 137 || st.PID != 0 {
		t.Errorf("after kill -9: %+v, want crashed with last exit 137", st)
	}
	addr, release, err = s.Acquire(context.Background(), svSite(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	second := svGet(t, addr, "")
	if second.PID == first.PID {
		t.Errorf("same pid %d after the crash", first.PID)
	}
	if st := svStatus(t, s, "one"); st.State != Running || st.Restarts != 1 {
		t.Errorf("after restart: %+v, want running with 1 restart", st)
	}
	if !slices.Contains(svLogTexts(s, "one"), "exited with status 137") {
		t.Errorf("no exit line in %q", svLogTexts(s, "one"))
	}
}

func TestSupervisorBackoffThenReloadRecovers(t *testing.T) {
	p := svProject(t, "")
	broken := filepath.Join(p.Root, "broken")
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s, _ := newSvSupervisor(t, Config{Project: p, Command: svChildCmd(t, "crash-if", broken)})
	ctx := context.Background()
	for i := 1; i <= 2; i++ {
		_, _, err := s.Acquire(ctx, svSite(t, "one"))
		var be *BootError
		if !errors.As(err, &be) {
			t.Fatalf("attempt %d: %v, want *BootError", i, err)
		}
		if !slices.ContainsFunc(be.Tail, func(l string) bool { return strings.Contains(l, "RuntimeError: "+broken+" exists") }) {
			t.Errorf("attempt %d: tail %q lacks the error", i, be.Tail)
		}
		if st := svStatus(t, s, "one"); st.State != Crashed || st.LastExit == nil || *st.LastExit != 1 {
			t.Errorf("attempt %d: %+v", i, st)
		}
	}
	before := time.Now()
	_, _, err := s.Acquire(ctx, svSite(t, "one"))
	var bo *BackoffError
	if !errors.As(err, &bo) {
		t.Fatalf("third death: %v, want *BackoffError", err)
	}
	if bo.LastExit != 1 || !bo.Until.After(before) || bo.Until.After(time.Now().Add(time.Second)) {
		t.Errorf("backoff %+v, want 1s and exit 1", bo)
	}
	if st := svStatus(t, s, "one"); st.State != Backoff || !st.BackoffUntil.Equal(bo.Until) {
		t.Errorf("status %+v, want backoff until %s", st, bo.Until)
	}
	// In backoff no process starts (checked only while the 1s lasts: the
	// machine may be slow).
	_, _, err = s.Acquire(ctx, svSite(t, "one"))
	if time.Now().Before(bo.Until) {
		if !errors.As(err, &bo) {
			t.Fatalf("during backoff: %v", err)
		}
		if got := svCountPrefix(svLogTexts(s, "one"), "starting: "); got != 3 {
			t.Errorf("%d starts, want 3", got)
		}
	}
	// Fixing the cause and a code change recover at once.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	s.ReloadCode()
	addr, release, err := s.Acquire(ctx, svSite(t, "one"))
	if err != nil {
		t.Fatalf("after the fix: %v", err)
	}
	release()
	svGet(t, addr, "")
}

func TestBackoffDelays(t *testing.T) {
	want := map[int]time.Duration{3: time.Second, 4: 2 * time.Second, 5: 4 * time.Second, 7: 16 * time.Second, 8: 30 * time.Second, 50: 30 * time.Second}
	for streak, d := range want {
		if got := backoffDelay(streak); got != d {
			t.Errorf("backoffDelay(%d) = %s, want %s", streak, got, d)
		}
	}
}

func TestSupervisorBootTimeout(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "noserve"), BootTimeout: 2 * time.Second})
	_, _, err := s.Acquire(context.Background(), svSite(t, "one"))
	var be *BootError
	if !errors.As(err, &be) || !strings.Contains(err.Error(), "within 2s") {
		t.Fatalf("got %v, want a *BootError about the timeout", err)
	}
	if !slices.Contains(be.Tail, "not listening on purpose") {
		t.Errorf("tail %q", be.Tail)
	}
	if st := svStatus(t, s, "one"); st.State != Crashed || st.PID != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestSupervisorIdleTimeout(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "serve"), IdleTimeout: 400 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)

	// A request in flight keeps the process up past the idle timeout.
	_, release, err := s.Acquire(ctx, svSite(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if st := svStatus(t, s, "one"); st.State != Running {
		t.Fatalf("stopped with a request in flight: %+v", st)
	}
	release()
	svWaitFor(t, 5*time.Second, "the idle stop", func() bool { return svStatus(t, s, "one").State == Stopped })
	svWaitFor(t, 5*time.Second, "the stop line", func() bool {
		return slices.Contains(svLogTexts(s, "one"), "stopped (idle 400ms)")
	})
	if st := svStatus(t, s, "one"); st.LastExit != nil {
		t.Errorf("an idle stop is not a crash: %+v", st)
	}
	// The next request starts it again.
	addr, release, err := s.Acquire(ctx, svSite(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	svGet(t, addr, "")
}

func TestSupervisorMaxRunningEvictsLRU(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "serve"), MaxRunning: 2})
	ctx := context.Background()
	use := func(slug string) {
		_, release, err := s.Acquire(ctx, svSite(t, slug))
		if err != nil {
			t.Fatal(err)
		}
		release()
	}
	use("one")
	use("two")
	use("one") // two is now the least recently used
	use("three")
	svWaitFor(t, 5*time.Second, "two stopped", func() bool { return svStatus(t, s, "two").State == Stopped })
	for slug, want := range map[string]State{"one": Running, "two": Stopped, "three": Running} {
		if got := svStatus(t, s, slug).State; got != want {
			t.Errorf("%s: %s, want %s", slug, got, want)
		}
	}
	svWaitFor(t, 5*time.Second, "the eviction line", func() bool {
		return slices.Contains(svLogTexts(s, "two"), "stopped (max-running 2, to start three)")
	})

	// A busy process is never evicted: with one and three in flight, a
	// fourth start goes over the limit rather than cutting a request.
	_, r1, _ := s.Acquire(ctx, svSite(t, "one"))
	_, r3, _ := s.Acquire(ctx, svSite(t, "three"))
	defer r1()
	defer r3()
	use("two")
	if svStatus(t, s, "one").State != Running || svStatus(t, s, "three").State != Running {
		t.Errorf("a busy process was evicted: %+v", s.Statuses())
	}
}

func TestSupervisorReloadDropsNoRequest(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "serve")})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok, failed atomic.Int64
	pids := sync.Map{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				addr, release, err := s.Acquire(ctx, svSite(t, "one"))
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
						t.Errorf("acquire: %v", err)
					}
					return
				}
				resp, err := http.Get("http://" + addr + "/?sleep_ms=20")
				if err != nil {
					failed.Add(1)
					t.Errorf("request: %v", err)
					release()
					continue
				}
				var r svChildReply
				_ = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				release()
				pids.Store(r.PID, true)
				ok.Add(1)
			}
		}()
	}
	for range 3 {
		time.Sleep(300 * time.Millisecond)
		s.ReloadCode()
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	n := 0
	pids.Range(func(any, any) bool { n++; return true })
	// Usually 4 processes serve; on a slow machine a reload may replace a
	// process that never got a request.
	if failed.Load() != 0 || n < 2 {
		t.Errorf("%d requests ok, %d failed, %d distinct processes; want 0 failed and several processes", ok.Load(), failed.Load(), n)
	}
	t.Logf("%d requests, %d processes, 0 failed", ok.Load(), n)
	if st := svStatus(t, s, "one"); st.Restarts != 3 {
		t.Errorf("restarts = %d, want 3", st.Restarts)
	}
}

func TestSupervisorStartStopRestart(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "serve")})
	ctx := context.Background()
	if err := s.Start(ctx, "three"); err != nil {
		t.Fatal(err)
	}
	st := svStatus(t, s, "three")
	if st.State != Running {
		t.Fatalf("after Start: %+v", st)
	}
	if err := s.Restart(ctx, "three"); err != nil {
		t.Fatal(err)
	}
	st2 := svStatus(t, s, "three")
	if st2.State != Running || st2.PID == st.PID || st2.Restarts != 1 {
		t.Errorf("after Restart: %+v (before %+v)", st2, st)
	}
	svWaitFor(t, 10*time.Second, "the old process gone", func() bool { return !proc.Alive(st.PID) })
	if err := s.Stop(ctx, "three"); err != nil {
		t.Fatal(err)
	}
	if proc.Alive(st2.PID) || svStatus(t, s, "three").State != Stopped {
		t.Errorf("after Stop: pid %d alive=%v, %+v", st2.PID, proc.Alive(st2.PID), svStatus(t, s, "three"))
	}
	err := s.Start(ctx, "nope")
	if !sites.IsUsage(err) {
		t.Errorf("Start(unknown) = %v, want a usage error", err)
	}
}

func TestSupervisorSingleMode(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "serve"), Mode: Single})
	s.SetSites(svSites(), 2)
	ctx := context.Background()
	a1, r1, err := s.Acquire(ctx, svSite(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	a3, r3, err := s.Acquire(ctx, svSite(t, "three"))
	if err != nil {
		t.Fatal(err)
	}
	r1()
	r3()
	if a1 != a3 {
		t.Errorf("single mode: %s and %s, want one process", a1, a3)
	}
	if got := svGet(t, a1, "").SiteID; got != "2" {
		t.Errorf("SITE_ID = %s, want the forced 2", got)
	}
	for _, st := range s.Statuses() {
		if st.State != Running || st.Port == 0 {
			t.Errorf("status %+v, want every site running on the one process", st)
		}
	}
	// Forcing another site restarts the process; requests wait for it.
	s.SetSites(svSites(), 3)
	addr, release, err := s.Acquire(ctx, svSite(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if got := svGet(t, addr, "").SiteID; got != "3" {
		t.Errorf("after the switch SITE_ID = %s, want 3", got)
	}
	if len(s.Logs("two", 0)) == 0 || s.Logs("two", 0)[0].Site != SingleSlug {
		t.Errorf("single-mode logs: %+v", s.Logs("two", 3))
	}
}

func TestSupervisorLongLines(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "longline")})
	addr, release, err := s.Acquire(context.Background(), svSite(t, "one"))
	if err != nil {
		t.Fatal(err)
	}
	release()
	svGet(t, addr, "")
	svWaitFor(t, 5*time.Second, "the line after the long one", func() bool {
		return slices.Contains(svLogTexts(s, "one"), "after the long line")
	})
	var sizes []int
	for _, l := range svLogTexts(s, "one") {
		if strings.HasPrefix(l, "xxxx") {
			sizes = append(sizes, len(l))
		}
	}
	if want := []int{64 << 10, 64 << 10, 64 << 10, 8 << 10}; !slices.Equal(sizes, want) {
		t.Errorf("long line pieces %v, want %v", sizes, want)
	}
}

func svReadFamily(t testing.TB, root string, siteID int64) (pid, gpid int) {
	t.Helper()
	f := filepath.Join(root, fmt.Sprintf("family-%d", siteID))
	svWaitFor(t, 10*time.Second, "the family file", func() bool { _, err := os.Stat(f); return err == nil })
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(string(b), "%d %d", &pid, &gpid); err != nil {
		t.Fatalf("family file %q: %v", b, err)
	}
	return pid, gpid
}

func TestSupervisorCloseKillsProcessGroups(t *testing.T) {
	p := svProject(t, "")
	ev := &svEvents{}
	s := New(Config{Project: p, Command: svChildCmd(t, "grandchild")}, ev.emit)
	s.SetSites(svSites(), 0)
	for _, slug := range []string{"one", "two"} {
		if _, release, err := s.Acquire(context.Background(), svSite(t, slug)); err != nil {
			t.Fatal(err)
		} else {
			release()
		}
	}
	var pids []int
	for _, id := range []int64{1, 2} {
		pid, gpid := svReadFamily(t, p.Root, id)
		pids = append(pids, pid, gpid)
	}
	for _, pid := range pids {
		if !proc.Alive(pid) {
			t.Fatalf("pid %d not running before Close", pid)
		}
	}
	// The grandchildren ignore SIGTERM; Close must still end them.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// SIGKILL delivery is asynchronous: allow a moment.
	for _, pid := range pids {
		svWaitFor(t, 2*time.Second, fmt.Sprintf("pid %d (of %v) to die after Close", pid, pids), func() bool { return !proc.Alive(pid) })
	}
	if _, _, err := s.Acquire(ctx, svSite(t, "one")); !errors.Is(err, ErrClosed) {
		t.Errorf("Acquire after Close: %v", err)
	}
}

// TestSupervisorDiesWithSIGKILLedHost runs a supervisor in a child process
// (standing in for siteplex), SIGKILLs it and checks that its site process
// and that process's child are gone within 5 s.
func TestSupervisorDiesWithSIGKILLedHost(t *testing.T) {
	p := svProject(t, "")
	host := exec.Command(svChildCmd(t, "host")[0], svChildCmd(t, "host")[1:]...)
	host.Env = append(os.Environ(), "HOST_ROOT="+p.Root)
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	host.Stderr = os.Stderr
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") || strings.HasPrefix(sc.Text(), "host:") {
				ready <- sc.Text()
				return
			}
		}
		ready <- "host ended"
	}()
	select {
	case l := <-ready:
		if l != "READY" {
			t.Fatalf("host: %s", l)
		}
	case <-time.After(30 * time.Second):
		host.Process.Kill()
		t.Fatal("host not ready")
	}
	pid, gpid := svReadFamily(t, p.Root, 7)
	if !proc.Alive(pid) || !proc.Alive(gpid) {
		t.Fatalf("site process %d or its child %d not running", pid, gpid)
	}
	if err := host.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = host.Wait()
	killedAt := time.Now()
	svWaitFor(t, 5*time.Second, "the site process and its child to die", func() bool { return !proc.Alive(pid) && !proc.Alive(gpid) })
	t.Logf("site processes gone %s after the host's SIGKILL", time.Since(killedAt).Round(time.Millisecond))

	// The host left its pid file behind; the next start sweeps it.
	files, _ := filepath.Glob(filepath.Join(p.StateDir(), "pids", "*.pid"))
	if len(files) != 1 {
		t.Fatalf("pid files after the SIGKILL: %v", files)
	}
	if _, err := SweepStale(p.StateDir()); err != nil {
		t.Fatal(err)
	}
	files, _ = filepath.Glob(filepath.Join(p.StateDir(), "pids", "*.pid"))
	if len(files) != 0 {
		t.Errorf("pid files after the sweep: %v", files)
	}
}

func TestBuildSpec(t *testing.T) {
	p := svProject(t, "A=env-file\nB=env-file\n")
	p.Config.Process.Env = map[string]string{"B": "config", "C": "config"}
	venv := filepath.Join(p.Root, ".venv", "bin")
	if err := os.MkdirAll(venv, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(venv, "python"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("A", "os")
	t.Setenv("SITE_ID", "99")
	perSiteCmd := sites.Site{ID: 4, Slug: "four", Domain: "four.test:8000", Command: []string{"run", "{slug}"}, Env: map[string]string{"C": "site"}}
	tests := []struct {
		name    string
		cfg     Config
		site    sites.Site
		single  bool
		forced  int64
		argv    []string
		env     map[string]string
		noEnvID bool
	}{
		{
			name: "default command uses the project's virtualenv",
			site: sites.Site{ID: 2, Slug: "two"},
			argv: []string{filepath.Join(venv, "python"), "manage.py", "runserver", "127.0.0.1:8123", "--noreload"},
			env:  map[string]string{"A": "env-file", "B": "config", "C": "config", "SITE_ID": "2", "PORT": "8123", "PYTHONUNBUFFERED": "1"},
		},
		{
			name: "per-site command and env win",
			cfg:  Config{Command: []string{"global"}},
			site: perSiteCmd,
			argv: []string{"run", "four"},
			env:  map[string]string{"C": "site", "SITE_ID": "4"},
		},
		{
			name:   "single mode: forced id, global command",
			cfg:    Config{Command: []string{"serve", "{site_id}", "{domain}", "{root}"}},
			site:   perSiteCmd,
			single: true,
			forced: 3,
			argv:   []string{"serve", "3", "four.test:8000", p.Root},
			env:    map[string]string{"SITE_ID": "3"},
		},
		{
			name:   "single mode without a forced site keeps the inherited SITE_ID",
			cfg:    Config{Command: []string{"serve", "[{site_id}]"}},
			single: true,
			argv:   []string{"serve", "[]"},
			env:    map[string]string{"SITE_ID": "99"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Project = p
			s := New(tt.cfg, nil)
			defer s.Close(context.Background())
			spec, err := s.buildSpec(tt.site, tt.single, tt.forced, 8123, "tok")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(spec.Argv, tt.argv) {
				t.Errorf("argv %q, want %q", spec.Argv, tt.argv)
			}
			env := map[string]string{}
			for _, kv := range spec.Env {
				k, v, _ := strings.Cut(kv, "=")
				if _, dup := env[k]; dup {
					t.Errorf("%s twice in the environment", k)
				}
				env[k] = v
			}
			for k, v := range tt.env {
				if env[k] != v {
					t.Errorf("env %s = %q, want %q", k, env[k], v)
				}
			}
			if env[procTokenEnv] != "tok" || spec.Dir != p.Root || spec.Single != tt.single {
				t.Errorf("spec %+v", spec)
			}
		})
	}
}

// BenchmarkSupervisorColdStart measures a first request to a stopped site
// (a Go child that starts listening at once): ns/op is the whole start,
// overhead-ms/op the time from the child's port accepting to Acquire
// returning (what the supervisor adds on top of the backend's own boot).
func BenchmarkSupervisorColdStart(b *testing.B) {
	p := svProject(b, "")
	s := New(Config{Project: p, Command: svChildCmd(b, "serve")}, nil)
	defer s.Close(context.Background())
	s.SetSites(svSites(), 0)
	ctx := context.Background()
	var overhead time.Duration
	for b.Loop() {
		addr, release, err := s.Acquire(ctx, svSite(b, "one"))
		if err != nil {
			b.Fatal(err)
		}
		got := time.Now()
		r := svGet(b, addr, "")
		overhead += got.Sub(time.Unix(0, r.ListenAt))
		release()
		b.StopTimer()
		if err := s.Stop(ctx, "one"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(overhead.Microseconds())/1000/float64(b.N), "overhead-ms/op")
}

// After Close nothing of the supervisor is left: no goroutine, no open
// file, no process (the soak test of the engine relies on this).
func TestSupervisorCloseLeavesNothingBehind(t *testing.T) {
	p := svProject(t, "")
	if err := os.WriteFile(filepath.Join(p.Root, "app.py"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fds := func() int { e, _ := os.ReadDir("/proc/self/fd"); return len(e) }
	// Warm up what the runtime starts once (signal handling, netpoll).
	_, _ = http.Get("http://127.0.0.1:1/")
	goroutines, files := runtime.NumGoroutine(), fds()

	s := New(Config{Project: p, Command: svChildCmd(t, "serve"), Watch: true, IdleTimeout: time.Hour}, nil)
	s.SetSites(svSites(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { _ = s.Run(ctx); close(runDone) }()
	var pids []int
	for _, slug := range []string{"one", "two"} {
		addr, release, err := s.Acquire(ctx, svSite(t, slug))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, svGet(t, addr, "").PID)
		release()
	}
	s.ReloadCode()
	if err := s.Start(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-runDone
	svWaitFor(t, 5*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= goroutines })
	svWaitFor(t, 5*time.Second, "open files back to the baseline", func() bool { return fds() <= files })
	for _, pid := range pids {
		if proc.Alive(pid) {
			t.Errorf("pid %d alive", pid)
		}
	}
}

// BenchmarkAcquireRelease is the supervisor's share of every proxied
// request: Acquire and release of a running site, from all CPUs.
func BenchmarkAcquireRelease(b *testing.B) {
	p := svProject(b, "")
	s := New(Config{Project: p, Command: svChildCmd(b, "serve")}, nil)
	defer s.Close(context.Background())
	s.SetSites(svSites(), 0)
	ctx := context.Background()
	if err := s.Start(ctx, "one"); err != nil {
		b.Fatal(err)
	}
	st := svSite(b, "one")
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, release, err := s.Acquire(ctx, st)
			if err != nil {
				b.Fatal(err)
			}
			release()
		}
	})
}

// Requests arriving just as the idle reaper stops a process must never be
// handed the process being stopped: a tiny idle timeout, requests with
// random gaps, and not one failure.
func TestSupervisorIdleStopRacesNoRequest(t *testing.T) {
	s, _ := newSvSupervisor(t, Config{Command: svChildCmd(t, "serve"), IdleTimeout: 30 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	go s.Run(ctx)
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				addr, release, err := s.Acquire(context.Background(), svSite(t, "one"))
				if err != nil {
					failed.Add(1)
					t.Errorf("acquire: %v", err)
					return
				}
				resp, err := client.Get("http://" + addr + "/")
				if err == nil {
					resp.Body.Close()
					ok.Add(1)
				} else {
					failed.Add(1)
					t.Errorf("request: %v", err)
				}
				release()
				time.Sleep(time.Duration((g*7+i*13)%150) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	restarts := svStatus(t, s, "one").Restarts
	t.Logf("%d requests, %d idle stops and restarts, %d failed", ok.Load(), restarts, failed.Load())
	if restarts == 0 {
		t.Error("the idle reaper never stopped the process: the test proved nothing")
	}
}
