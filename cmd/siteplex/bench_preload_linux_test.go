package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/internal/testenv"
)

// BenchmarkServePreload measures `siteplex serve` (the real binary) over
// 8 sites, plain (`runserver` per site) against --preload, on the small
// fixture (testdata/django) and the admin fixture (testdata/django-admin).
// bench/preload.sh prints the results as a table.
//
//	first-request  a stopped site (stopped through the API): one GET
//	               /whoami/ through the proxy until it answers (ns/op)
//	reload-8       the 8 sites running; from touching a .py file (the
//	               project's views.py or urls.py) until all 8 answer
//	               through the proxy from new processes, the watcher's
//	               300 ms debounce included (ns/op)
//	pss-8          summed PSS of the 8 site processes (and the warm
//	               parent) once all 8 answered (PSS-MiB; -benchtime 1x)
func BenchmarkServePreload(b *testing.B) {
	bin := buildSiteplex(b)
	for _, pr := range []struct{ label, fixture, touch string }{
		{"small", "django", "fixtureproj/views.py"},
		{"admin", "django-admin", "adminproj/urls.py"},
	} {
		b.Run(pr.label, func(b *testing.B) {
			for _, what := range []string{"first-request", "reload-8", "pss-8"} {
				for _, mode := range []string{"plain", "preload"} {
					b.Run(what+"/"+mode, func(b *testing.B) {
						sv := startBenchServe(b, bin, pr.fixture, mode == "preload")
						switch what {
						case "first-request":
							sv.firstRequest(b)
						case "reload-8":
							sv.reload(b, pr.touch)
						case "pss-8":
							sv.pss(b)
						}
					})
				}
			}
		})
	}
}

// benchServe is one `siteplex serve` over a fresh 8-site fixture.
type benchServe struct {
	*serveProc
	root    string
	preload bool
	c       *devproxy.Client
}

func startBenchServe(b *testing.B, bin, fixture string, preload bool) *benchServe {
	b.Helper()
	root := testenv.DjangoFixtureSites(b, fixture, 8)
	args := []string{"--idle-timeout", "0", "--command", testenv.Python + " manage.py runserver 127.0.0.1:{port} --noreload"}
	if preload {
		args = append(args, "--preload")
	}
	sp := startServe(b, bin, root, args...)
	b.Cleanup(func() { stopServe(b, sp) })
	ef, err := devproxy.ReadEngineFile(filepath.Join(root, ".siteplex"))
	if err != nil {
		b.Fatal(err)
	}
	return &benchServe{serveProc: sp, root: root, preload: preload, c: devproxy.NewClient(ef)}
}

func (sv *benchServe) status(b *testing.B) devproxy.Status {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sv.c.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if len(st.Sites) != 8 {
		b.Fatalf("%d sites, want 8", len(st.Sites))
	}
	return st
}

// who asks host's /whoami/ through the proxy and returns the pid that
// answered.
func (sv *benchServe) who(b *testing.B, host string) int {
	b.Helper()
	code, body := httpGet(b, sv.addr, host, "/whoami/")
	var w struct {
		PID int `json:"pid"`
	}
	if code != 200 || json.Unmarshal(body, &w) != nil {
		b.Fatalf("Host %s: %d %.500s", host, code, body)
	}
	return w.PID
}

// all asks every site once, so that all 8 run; it returns their pids.
func (sv *benchServe) all(b *testing.B) map[string]int {
	b.Helper()
	pids := map[string]int{}
	for _, s := range sv.status(b).Sites {
		pids[s.Slug] = sv.who(b, s.Domain)
	}
	return pids
}

func (sv *benchServe) firstRequest(b *testing.B) {
	site := sv.status(b).Sites[0]
	sv.who(b, site.Domain) // the warm parent boots here, with --preload
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		if err := sv.c.SiteAction(ctx, site.Slug, "stop"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		sv.who(b, site.Domain)
	}
}

func (sv *benchServe) reload(b *testing.B, touch string) {
	list := sv.status(b).Sites
	for b.Loop() {
		b.StopTimer()
		old := sv.all(b)
		b.StartTimer()
		now := time.Now()
		if err := os.Chtimes(filepath.Join(sv.root, touch), now, now); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for _, s := range list {
			for sv.who(b, s.Domain) == old[s.Slug] {
				if time.Now().After(deadline) {
					b.Fatalf("%s still answers from its old process 2 minutes after the touch", s.Slug)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
}

func (sv *benchServe) pss(b *testing.B) {
	pids := sv.all(b)
	st := sv.status(b)
	kib, parent := 0, 0
	for _, pid := range pids {
		kib += pssKiB(b, pid)
	}
	if sv.preload {
		if st.Preload == nil || st.Preload.ParentPID == 0 {
			b.Fatalf("--preload without a warm parent: %+v", st.Preload)
		}
		parent = pssKiB(b, st.Preload.ParentPID)
		kib += parent
	}
	for b.Loop() {
	}
	b.ReportMetric(float64(kib)/1024, "PSS-MiB")
	b.ReportMetric(float64(parent)/1024, "parent-PSS-MiB")
}

// pssKiB reads "Pss:" from /proc/PID/smaps_rollup.
func pssKiB(b *testing.B, pid int) int {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			v, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			if err != nil {
				b.Fatalf("pid %d: %q", pid, sc.Text())
			}
			return v
		}
	}
	b.Fatalf("pid %d: no Pss line", pid)
	return 0
}
