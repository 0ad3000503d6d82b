package preload

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
)

// BenchmarkPreload compares plain `manage.py runserver --noreload` per
// site with children forked from a warm parent, on the small fixture
// (testdata/django) and the admin fixture (testdata/django-admin), 8
// sites each. bench/preload.sh prints the results as a table.
//
//	first-request  a site that is not running: start (or fork) it and poll
//	               GET /whoami/ until it answers 200 (ns/op)
//	start-8        the reload: 8 plain processes started at once, or a new
//	               warm parent booted and 8 children forked, until all 8
//	               answer (ns/op)
//	pss-8          summed PSS of every process once all 8 sites answered:
//	               the 8 plain processes, or the parent plus 8 children
//	               (PSS-MiB; run with -benchtime 1x)
func BenchmarkPreload(b *testing.B) {
	projects := []struct {
		name string
		dir  func(testing.TB) string
	}{
		{"small", func(t testing.TB) string { return testenv.DjangoFixture(t, "django", false) }},
		{"admin", copyAdminFixture},
	}
	for _, pr := range projects {
		b.Run(pr.name, func(b *testing.B) {
			dir := pr.dir(b)
			b.Run("first-request/plain", func(b *testing.B) {
				for b.Loop() {
					s := startPlainSite(b, dir, 1)
					s.serve(b)
					b.StopTimer()
					s.stop()
					b.StartTimer()
				}
			})
			b.Run("first-request/preload", func(b *testing.B) {
				p, _ := startParent(b, dir)
				for b.Loop() {
					s := forkSite(b, p, 1)
					s.serve(b)
					b.StopTimer()
					s.stop()
					b.StartTimer()
				}
			})
			b.Run("start-8/plain", func(b *testing.B) {
				for b.Loop() {
					sites := make([]benchSite, 8)
					for i := range sites {
						sites[i] = startPlainSite(b, dir, int64(i+1))
					}
					serveAll(b, sites)
					b.StopTimer()
					stopAll(sites)
					b.StartTimer()
				}
			})
			b.Run("start-8/preload", func(b *testing.B) {
				for b.Loop() {
					p, _ := startParent(b, dir)
					sites := make([]benchSite, 8)
					for i := range sites {
						sites[i] = forkSite(b, p, int64(i+1))
					}
					serveAll(b, sites)
					b.StopTimer()
					_ = p.Close()
					b.StartTimer()
				}
			})
			b.Run("pss-8/plain", func(b *testing.B) {
				sites := make([]benchSite, 8)
				for i := range sites {
					sites[i] = startPlainSite(b, dir, int64(i+1))
				}
				serveAll(b, sites)
				var pids []int
				for _, s := range sites {
					pids = append(pids, s.pid())
				}
				reportPSS(b, pids)
				stopAll(sites)
			})
			b.Run("pss-8/preload", func(b *testing.B) {
				p, _ := startParent(b, dir)
				sites := make([]benchSite, 8)
				for i := range sites {
					sites[i] = forkSite(b, p, int64(i+1))
				}
				serveAll(b, sites)
				pids := []int{p.PID()}
				for _, s := range sites {
					pids = append(pids, s.pid())
				}
				reportPSS(b, pids)
				b.ReportMetric(float64(pssKiB(p.PID()))/1024, "parent-PSS-MiB")
				stopAll(sites)
			})
		})
	}
}

// benchSite is a plain process or a forked child.
type benchSite struct {
	addr string
	pid  func() int
	stop func()
}

func startPlainSite(b *testing.B, dir string, id int64) benchSite {
	pl := startPlain(b, dir, id)
	return benchSite{addr: pl.addr, pid: func() int { return pl.cmd.Process.Pid }, stop: pl.stop}
}

func forkSite(b *testing.B, p *Parent, id int64) benchSite {
	port := testenv.MustFreePort(b)
	c, err := p.Fork(context.Background(), ChildSpec{
		SiteID: id, Port: port,
		Env: []string{"SITE_ID=" + strconv.FormatInt(id, 10), "PORT=" + strconv.Itoa(port)},
	})
	if err != nil {
		b.Fatal(err)
	}
	return benchSite{addr: c.Addr(), pid: c.PID, stop: func() { _ = c.Stop(context.Background(), time.Second) }}
}

// serve polls GET /whoami/ every 2 ms until it answers 200 (a minute at most).
func (s benchSite) serve(b *testing.B) {
	deadline := time.Now().Add(time.Minute)
	for {
		if code, _, err := get(s.addr, "", "/whoami/"); err == nil && code == 200 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s did not answer within a minute", s.addr)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func serveAll(b *testing.B, sites []benchSite) {
	var wg sync.WaitGroup
	for _, s := range sites {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.serve(b)
		}()
	}
	wg.Wait()
}

func stopAll(sites []benchSite) {
	for _, s := range sites {
		s.stop()
	}
}

// reportPSS reports the summed proportional set size of pids.
func reportPSS(b *testing.B, pids []int) {
	var kib int
	for _, pid := range pids {
		kib += pssKiB(pid)
	}
	b.ReportMetric(float64(kib)/1024, "PSS-MiB")
}

// pssKiB reads "Pss:" from /proc/PID/smaps_rollup (0 when unreadable).
func pssKiB(pid int) int {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			v, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return v
		}
	}
	return 0
}
