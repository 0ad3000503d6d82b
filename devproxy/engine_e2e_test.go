package devproxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/demosite"
	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// The tests in this file run the whole engine — proxy and real supervisor —
// in front of real processes: the demo site (this test binary re-executed)
// and the Django fixture (testdata/django under /usr/bin/python3).

const demoChildMarker = "engine-demosite"

// demoChildCmd is the argv template that runs the demo site as a child.
func demoChildCmd(t testing.TB) []string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return []string{exe, "-test.run=^TestEngineDemoSiteChild$", "--", demoChildMarker, "{slug}"}
}

// TestEngineDemoSiteChild is not a test: it is the demo-site child process
// of the engine tests, and returns at once in a normal run.
func TestEngineDemoSiteChild(t *testing.T) {
	slug := childArg(demoChildMarker)
	if slug == "" {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		// The supervisor stops children with SIGTERM.
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
		<-ch
		cancel()
	}()
	// The listen-at line (in the site's log) is when the port accepts:
	// BenchmarkEngineColdStart measures siteplex's share from there.
	ready := func(string) { fmt.Printf("listen-at %d\n", time.Now().UnixNano()) }
	err := demosite.Run(ctx, "127.0.0.1:"+os.Getenv("PORT"), demosite.Options{SiteID: os.Getenv("SITE_ID"), Site: slug}, ready)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// childArg is the argument after "-- marker" in this process's arguments:
// "" unless the test binary was re-executed as a child with that marker.
func childArg(marker string) string {
	for i, a := range os.Args {
		if a == marker && i > 0 && os.Args[i-1] == "--" && i+1 < len(os.Args) {
			return os.Args[i+1]
		}
	}
	return ""
}

// demoSites are three declared sites for the demo-site engine tests.
func demoSites(t testing.TB) []sites.Site {
	t.Helper()
	list := []sites.Site{
		{ID: 1, Name: "One", Domain: "one.example", Slug: "one", Declared: true},
		{ID: 2, Name: "Two", Domain: "two.example:8000", Slug: "two", Declared: true, Aliases: []string{"zwei.example"}},
		{ID: 3, Name: "Three", Domain: "three.example", Slug: "three", Declared: true},
	}
	sites.Finalize(list, pxFormat(t), 0)
	return list
}

// startRealEngine runs an engine with the real supervisor on 127.0.0.1:0.
func startRealEngine(t testing.TB, cfg Config) (*Engine, string) {
	t.Helper()
	cfg.Listen = []string{"127.0.0.1:0"}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = supervisor.IdleNever
	}
	if cfg.BootTimeout == 0 {
		cfg.BootTimeout = 60 * time.Second
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e, e.Addrs()[0]
}

func startDemoEngine(t testing.TB) (*Engine, string) {
	t.Helper()
	list := demoSites(t)
	return startRealEngine(t, Config{Config: supervisor.Config{Project: pxProject(t), Command: demoChildCmd(t)}, LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
}

func siteStatus(e *Engine, slug string) SiteStatus {
	for _, s := range e.Status().Sites {
		if s.Slug == slug {
			return s
		}
	}
	return SiteStatus{}
}

func TestEngineConcurrentFirstRequestsStartOneProcess(t *testing.T) {
	e, addr := startDemoEngine(t)
	events, cancel := e.Subscribe()
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		pids = map[int]int{}
		errs []string
	)
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 60 * time.Second}
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/whoami", nil)
			req.Host = "two.localhost"
			resp, err := client.Do(req)
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var w demosite.WhoAmI
			_ = json.Unmarshal(b, &w)
			mu.Lock()
			defer mu.Unlock()
			if resp.StatusCode != 200 || w.SiteID != "2" {
				errs = append(errs, fmt.Sprintf("status %d site %q", resp.StatusCode, w.SiteID))
				return
			}
			pids[w.PID]++
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of 20 first requests failed: %v", len(errs), errs)
	}
	if len(pids) != 1 {
		t.Errorf("20 concurrent first requests reached %d processes %v, want 1", len(pids), pids)
	}
	st := siteStatus(e, "two")
	if st.State != Running || st.Restarts != 0 || st.Requests != 20 {
		t.Errorf("status after the burst: %+v", st)
	}
	starts := 0
	for {
		select {
		case ev := <-events:
			if ev.Kind == EventState && ev.Site.Slug == "two" && ev.Site.State == Running {
				starts++
			}
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	if starts != 1 {
		t.Errorf("site two became running %d times, want 1", starts)
	}
	for _, slug := range []string{"one", "three"} {
		if st := siteStatus(e, slug); st.State != Stopped {
			t.Errorf("%s is %s, want stopped (lazy start)", slug, st.State)
		}
	}
}

func TestEngineKill9NextRequestRestarts(t *testing.T) {
	e, addr := startDemoEngine(t)
	_, b := pxGet(t, addr, "one.example", "/whoami", nil)
	first := pxWhoami(t, b)
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	resp, b := pxGet(t, addr, "one.example", "/whoami", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("request after kill -9: %d %s", resp.StatusCode, b)
	}
	second := pxWhoami(t, b)
	if second.PID == first.PID || second.SiteID != "1" {
		t.Errorf("after kill -9 of %d the request reached pid %d (SITE_ID %s)", first.PID, second.PID, second.SiteID)
	}
	st := siteStatus(e, "one")
	if st.PID != second.PID || st.LastExit == nil {
		t.Errorf("status after restart: %+v", st)
	}
}

func TestEngineStartAllAndSiteActions(t *testing.T) {
	list := demoSites(t)
	e, _ := startRealEngine(t, Config{Config: supervisor.Config{Project: pxProject(t), Command: demoChildCmd(t)}, StartAll: true, LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		n := 0
		for _, s := range e.Status().Sites {
			if s.State == Running {
				n++
			}
		}
		if n == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, s := range e.Status().Sites {
		if s.State != Running {
			t.Errorf("--start all: %s is %s", s.Slug, s.State)
		}
	}
	ctx := context.Background()
	if err := e.StopSite(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if st := siteStatus(e, "one"); st.State != Stopped {
		t.Errorf("after StopSite: %s", st.State)
	}
	before := siteStatus(e, "two").PID
	if err := e.RestartSite(ctx, "two"); err != nil {
		t.Fatal(err)
	}
	if err := e.StartSite(ctx, "two"); err != nil {
		t.Fatal(err)
	}
	if st := siteStatus(e, "two"); st.PID == before || st.State != Running {
		t.Errorf("after RestartSite: %+v (pid before %d)", st, before)
	}
	if err := e.StartSite(ctx, "nope"); err == nil || !sites.IsUsage(err) {
		t.Errorf("StartSite(nope) = %v, want a usage error", err)
	}
}

func TestEngineReloadPicksUpTableChanges(t *testing.T) {
	var mu sync.Mutex
	list := demoSites(t)[:1]
	load := func(context.Context) ([]sites.Site, error) {
		mu.Lock()
		defer mu.Unlock()
		return append([]sites.Site(nil), list...), nil
	}
	e, addr := startRealEngine(t, Config{Config: supervisor.Config{Project: pxProject(t), Command: demoChildCmd(t)}, LoadSites: load})
	if resp, _ := pxGet(t, addr, "three.example", "/", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("three before it exists: %d", resp.StatusCode)
	}
	mu.Lock()
	list = demoSites(t)
	mu.Unlock()
	if err := e.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, b := pxGet(t, addr, "three.example", "/whoami", nil)
	if resp.StatusCode != 200 || pxWhoami(t, b).SiteID != "3" {
		t.Fatalf("three after Reload: %d %s", resp.StatusCode, b)
	}
	// Polling notices a removal without an explicit reload.
	mu.Lock()
	list = demoSites(t)[:2]
	mu.Unlock()
	deadline := time.Now().Add(3 * pollInterval)
	for time.Now().Before(deadline) {
		if resp, _ := pxGet(t, addr, "three.example", "/", nil); resp.StatusCode == http.StatusNotFound {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Errorf("site three still routed %s after it left the table", 3*pollInterval)
}

// djangoEngine runs the engine over a copy of the Django fixture; more
// change its configuration first.
func djangoEngine(t *testing.T, watch bool, more ...func(*Config)) (*Engine, string, string) {
	t.Helper()
	root := testenv.DjangoFixture(t, "django", false)
	p, load := fixtureLoader(t, root)
	cfg := Config{Config: supervisor.Config{Project: p, Command: supervisor.RunserverCommand(testenv.Python), Watch: watch}, LoadSites: load}
	for _, m := range more {
		m(&cfg)
	}
	e, addr := startRealEngine(t, cfg)
	return e, addr, root
}

// fixtureLoader loads the Django project in root and returns it with a
// LoadSites that reads its sites from its database.
func fixtureLoader(t testing.TB, root string) (*sites.Project, func(context.Context) ([]sites.Site, error)) {
	t.Helper()
	p, err := sites.Load(sites.Options{Project: root})
	if err != nil {
		t.Fatal(err)
	}
	return p, projectSites(p)
}

// TestEngineDjangoHeadThenGetRunsOnce: Django 3.2's runserver answers a
// HEAD with a body and keeps the connection (CommonMiddleware is on in
// the fixture). Neither the body nor anything else may make a following
// GET run twice or get the wrong answer.
func TestEngineDjangoHeadThenGetRunsOnce(t *testing.T) {
	e, addr, _ := djangoEngine(t, false)
	var site sites.Site
	for _, s := range e.Sites() {
		if s.Usable() && s.Enabled {
			site = s
			break
		}
	}
	// One client connection for everything, as a browser would use.
	tr := &http.Transport{Proxy: nil, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	const rounds = 8
	for i := 1; i <= rounds; i++ {
		for _, method := range []string{"HEAD", "GET"} {
			req, _ := http.NewRequest(method, fmt.Sprintf("http://%s/whoami/?%s=%d", addr, strings.ToLower(method), i), nil)
			req.Host = site.LocalDomain
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s %d: %v", method, i, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s %d: status %d %.300s", method, i, resp.StatusCode, b)
			}
			var w testenv.Whoami
			switch {
			case method == "HEAD" && len(b) != 0:
				t.Errorf("HEAD %d reached the client with a body: %.100q", i, b)
			case method == "GET" && (json.Unmarshal(b, &w) != nil || w.SiteID != site.ID):
				t.Errorf("GET %d got %.300q, want its own whoami", i, b)
			}
		}
	}
	// Django logs each request once it answered it.
	count := func(line string) int {
		n := 0
		for _, l := range e.Logs(site.Slug, 0) {
			if strings.Contains(l.Text, line) {
				n++
			}
		}
		return n
	}
	last := fmt.Sprintf(`"GET /whoami/?get=%d HTTP/1.1"`, rounds)
	for deadline := time.Now().Add(10 * time.Second); count(last) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // a second run of the last GET would be logged by now
	for i := 1; i <= rounds; i++ {
		for _, method := range []string{"HEAD", "GET"} {
			line := fmt.Sprintf(`"%s /whoami/?%s=%d HTTP/1.1"`, method, strings.ToLower(method), i)
			if n := count(line); n != 1 {
				t.Errorf("Django logged %s %d times, want once", line, n)
			}
		}
	}
}

func TestEngineDjangoEveryHostForm(t *testing.T) {
	e, addr, _ := djangoEngine(t, false)
	list := e.Sites()
	if len(list) < 3 {
		t.Fatalf("fixture sites: %+v", list)
	}
	for _, s := range list {
		if !s.Usable() || !s.Enabled {
			continue
		}
		hosts := []string{s.Domain, strings.ToUpper(s.LocalDomain) + ":80", s.LocalDomain, "static." + s.LocalDomain}
		hosts = append(hosts, s.Aliases...)
		if s.RealDomain != nil {
			hosts = append(hosts, *s.RealDomain)
		}
		for _, h := range hosts {
			resp, b := pxGet(t, addr, h, "/whoami/", nil)
			var w testenv.Whoami
			if resp.StatusCode != 200 || json.Unmarshal(b, &w) != nil {
				t.Errorf("Host %s: %d %.300s", h, resp.StatusCode, b)
				continue
			}
			if w.SiteID != s.ID || w.Host != h || w.XFF != "127.0.0.1" {
				t.Errorf("Host %s reached SITE_ID %d (Host %q, XFF %q), want %d", h, w.SiteID, w.Host, w.XFF, s.ID)
			}
		}
	}
	// An unknown host gets the index and no process starts for it.
	before := 0
	for _, s := range e.Status().Sites {
		if s.State != Stopped {
			before++
		}
	}
	resp, b := pxGet(t, addr, "unknown.example", "/whoami/", nil)
	if resp.StatusCode != http.StatusNotFound || !bytes.Contains(b, []byte("No site here answers")) {
		t.Errorf("unknown host: %d %.200s", resp.StatusCode, b)
	}
	// A 20 MB upload passes through to Django intact.
	const size = 20 << 20
	h := sha256.New()
	_, _ = io.Copy(h, &pxPattern{n: size})
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/upload/", &pxPattern{n: size})
	req.Host = list[0].Domain
	req.ContentLength = size
	up, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ub, _ := io.ReadAll(up.Body)
	up.Body.Close()
	var got struct {
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	if up.StatusCode != 200 || json.Unmarshal(ub, &got) != nil || got.Size != size || got.SHA256 != hex.EncodeToString(h.Sum(nil)) {
		t.Errorf("20 MB upload to Django: %d %.300s", up.StatusCode, ub)
	}
	// The streamed response arrives line by line.
	_, sb := pxGet(t, addr, list[0].Domain, "/stream/?n=3&delay=0.1", nil)
	if strings.Count(string(sb), "chunk ") != 3 {
		t.Errorf("stream: %q", sb)
	}
}

func TestEngineDjangoReloadDropsNoRequest(t *testing.T) {
	e, addr, root := djangoEngine(t, true)
	host := e.Sites()[0].Domain
	_, b := pxGet(t, addr, host, "/whoami/", nil)
	var first testenv.Whoami
	if err := json.Unmarshal(b, &first); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	var pidSeen sync.Map
	loop := newWhoLoop(addr)
	stop := untilStopped(4, func(int) {
		if w, ok := loop.get(host, 0); ok {
			pidSeen.Store(w.PID, true)
		}
	})
	time.Sleep(300 * time.Millisecond)
	// Touch a .py file: the watcher restarts the running process.
	settings := filepath.Join(root, "manage.py")
	now := time.Now()
	if err := os.Chtimes(settings, now, now); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if st := siteStatus(e, e.Sites()[0].Slug); st.PID != 0 && st.PID != first.PID && st.State == Running {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	newPID := false
	pidSeen.Range(func(k, _ any) bool {
		newPID = newPID || k.(int) != first.PID
		return true
	})
	if !newPID {
		t.Fatalf("no request reached a restarted process (status %+v)", siteStatus(e, e.Sites()[0].Slug))
	}
	loop.check(t, "the reload")
}

// whoLoop is a request loop's client and its count: GET /whoami/ through
// the proxy, answers that are not 200 with the fixture's JSON are failures.
type whoLoop struct {
	client     *http.Client
	addr       string
	ok, failed atomic.Int64
	lastFail   atomic.Value
}

func newWhoLoop(addr string) *whoLoop {
	return &whoLoop{addr: addr, client: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 90 * time.Second}}
}

// get asks host's /whoami/ (wantID > 0: it must answer that site) and
// counts the outcome.
func (l *whoLoop) get(host string, wantID int64) (testenv.Whoami, bool) {
	var w testenv.Whoami
	req, _ := http.NewRequest(http.MethodGet, "http://"+l.addr+"/whoami/", nil)
	req.Host = host
	resp, err := l.client.Do(req)
	if err != nil {
		l.failed.Add(1)
		l.lastFail.Store(err.Error())
		return w, false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || json.Unmarshal(b, &w) != nil || (wantID > 0 && w.SiteID != wantID) {
		l.failed.Add(1)
		l.lastFail.Store(fmt.Sprintf("%s: %d %.200s", host, resp.StatusCode, b))
		return w, false
	}
	l.ok.Add(1)
	return w, true
}

// check fails the test when a request failed during what.
func (l *whoLoop) check(t testing.TB, what string) {
	t.Helper()
	ok, failed := l.ok.Load(), l.failed.Load()
	t.Logf("%d requests across %s, %d failed", ok+failed, what, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed across %s; last: %v", failed, ok+failed, what, l.lastFail.Load())
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// TestSoakKillEveryTwoSeconds runs a request loop through the proxy while
// the site's process is SIGKILLed every 2 s (SITEPLEX_SOAK=60s by default;
// skipped under -short). Every request must get an answer — 200, or a 502/
// 503 page from siteplex — and goroutines and open files must come back to
// their baseline.
func TestSoakKillEveryTwoSeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped under -short")
	}
	dur := 60 * time.Second
	if v := os.Getenv("SITEPLEX_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SITEPLEX_SOAK=%q: %v", v, err)
		}
		dur = d
	}
	baseG, baseFD := goroutines(), openFDs(t)
	func() {
		list := demoSites(t)
		e, addr := startRealEngine(t, Config{Config: supervisor.Config{Project: pxProject(t), Command: demoChildCmd(t), BootTimeout: 30 * time.Second}, LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_ = e.Close(ctx)
		}()
		tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 45 * time.Second}
		var (
			ok, errPage, failed, kills atomic.Int64
			lastFail                   atomic.Value
		)
		stop := untilStopped(8, func(i int) {
			path := "/plain"
			if i%4 == 3 {
				path = "/stream?chunks=3&interval=10ms"
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
			req.Host = "two.localhost"
			resp, err := client.Do(req)
			if err != nil {
				failed.Add(1)
				lastFail.Store(err.Error())
				return
			}
			_, rerr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200 && rerr == nil:
				ok.Add(1)
			case (resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504) &&
				resp.Header.Get("X-Siteplex-Error") != "":
				errPage.Add(1)
			case resp.StatusCode == 200 && strings.HasPrefix(path, "/stream"):
				// A streamed answer cut by the kill ends early: the
				// client sees a truncated body, which is an answer.
				errPage.Add(1)
			default:
				failed.Add(1)
				lastFail.Store(fmt.Sprintf("status %d, body error %v", resp.StatusCode, rerr))
			}
		})
		end := time.Now().Add(dur)
		tick := time.NewTicker(2 * time.Second)
		for time.Now().Before(end) {
			<-tick.C
			if pid := siteStatus(e, "two").PID; pid > 0 {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					kills.Add(1)
				}
			}
		}
		tick.Stop()
		stop()
		total := ok.Load() + errPage.Load() + failed.Load()
		t.Logf("soak %s: %d requests, %d ok, %d error pages or cut streams, %d failed; %d kills", dur, total, ok.Load(), errPage.Load(), failed.Load(), kills.Load())
		if failed.Load() > 0 {
			t.Errorf("%d requests got no answer; last: %v", failed.Load(), lastFail.Load())
		}
		if ok.Load() == 0 || kills.Load() == 0 {
			t.Errorf("the soak did nothing: %d ok, %d kills", ok.Load(), kills.Load())
		}
	}()
	// Back to baseline: every goroutine and descriptor of the engine and
	// its children is gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, fd := goroutines(), openFDs(t)
		if g <= baseG+2 && fd <= baseFD+2 {
			t.Logf("goroutines %d → %d, open files %d → %d", baseG, g, baseFD, fd)
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("after the soak: goroutines %d (baseline %d), open files %d (baseline %d)", g, baseG, fd, baseFD)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func goroutines() int { return runtime.NumGoroutine() }

func TestEngineSingleModeUseRestartsWithRequestsHeld(t *testing.T) {
	list := demoSites(t)
	p := pxProject(t)
	p.Env.Values["SITE_ID"] = "1"
	e, addr := startRealEngine(t, Config{Config: supervisor.Config{Project: p, Command: demoChildCmd(t), Mode: Single}, LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
	for _, h := range []string{"one.example", "two.localhost", "localhost"} {
		_, b := pxGet(t, addr, h, "/whoami", nil)
		if w := pxWhoami(t, b); w.SiteID != "1" || w.Host != h {
			t.Errorf("single mode, Host %s: SITE_ID %s Host %s, want the shared process with SITE_ID 1", h, w.SiteID, w.Host)
		}
	}
	var failed atomic.Int64
	stop := untilStopped(1, func(int) {
		if resp, _ := pxGet(t, addr, "two.example", "/plain", nil); resp.StatusCode != 200 {
			failed.Add(1)
		}
	})
	time.Sleep(100 * time.Millisecond)
	if err := e.Use(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, b := pxGet(t, addr, "localhost", "/whoami", nil)
		if pxWhoami(t, b).SiteID == "2" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	_, b := pxGet(t, addr, "localhost", "/whoami", nil)
	if w := pxWhoami(t, b); w.SiteID != "2" {
		t.Errorf("after Use(2) in single mode: SITE_ID %s", w.SiteID)
	}
	if failed.Load() != 0 {
		t.Errorf("%d requests failed across the single-mode switch", failed.Load())
	}
}

// apiStatus reads GET /api/status as a client would.
func apiStatus(t testing.TB, addr string) map[string]SiteStatus {
	t.Helper()
	resp, b := pxGet(t, addr, "siteplex.localhost", "/api/status", nil)
	var st Status
	if resp.StatusCode != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("/api/status: %d %s", resp.StatusCode, b)
	}
	out := map[string]SiteStatus{}
	for _, s := range st.Sites {
		out[s.Slug] = s
	}
	return out
}

func TestEngineIdleTimeoutAndMaxRunningInAPIStatus(t *testing.T) {
	list := demoSites(t)
	_, addr := startRealEngine(t, Config{Config: supervisor.Config{Project: pxProject(t), Command: demoChildCmd(t), IdleTimeout: 400 * time.Millisecond, MaxRunning: 1}, LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
	pxGet(t, addr, "one.example", "/plain", nil)
	if st := apiStatus(t, addr); st["one"].State != Running || st["one"].Requests != 1 {
		t.Fatalf("after a request: %+v", st["one"])
	}
	// max-running 1: starting two stops one, the least recently used.
	pxGet(t, addr, "two.example", "/plain", nil)
	st := apiStatus(t, addr)
	if st["two"].State != Running || st["one"].State == Running {
		t.Errorf("max-running 1: one %s, two %s", st["one"].State, st["two"].State)
	}
	// idle timeout: two stops by itself.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && apiStatus(t, addr)["two"].State != Stopped {
		time.Sleep(100 * time.Millisecond)
	}
	if s := apiStatus(t, addr)["two"]; s.State != Stopped {
		t.Errorf("after the idle timeout two is %s", s.State)
	}
}

// TestEngineStateEventsCarryRequestCounts: the UI shows what state events
// carry, so a stop must not reset the site's request count to zero.
func TestEngineStateEventsCarryRequestCounts(t *testing.T) {
	e, addr := startDemoEngine(t)
	events, cancel := e.Subscribe()
	defer cancel()
	for range 2 {
		pxGet(t, addr, "one.example", "/whoami", nil)
	}
	if err := e.StopSite(context.Background(), "one"); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == EventState && ev.Site.Slug == "one" && ev.Site.State == Stopped {
				if ev.Site.Requests != 2 {
					t.Errorf("stopped event for one carries %d requests, want 2", ev.Site.Requests)
				}
				return
			}
		case <-timeout:
			t.Fatal("no stopped state event for one")
		}
	}
}

// untilStopped runs do(i) over and over in n goroutines (i = 0…n-1) until
// the returned stop is called; stop returns once they have all ended.
func untilStopped(n int, do func(i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				do(i)
			}
		}()
	}
	return func() {
		close(done)
		wg.Wait()
	}
}
