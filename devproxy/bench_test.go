package devproxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// BenchmarkProxyGET measures a small GET through the engine to
// a demo-site backend, with keep-alive on both sides; the client, proxy and
// backend share this process, so compare with BenchmarkDirectGET.
func BenchmarkProxyGET(b *testing.B) {
	list := []sites.Site{{ID: 1, Slug: "bench", Domain: "bench.localhost", LocalDomain: "bench.localhost", Enabled: true}}
	bs := newBackends(b, list)
	_, addr := startTestEngine(b, list, bs, 0)
	benchGET(b, "http://"+addr+"/plain", "bench.localhost")
}

// BenchmarkDirectGET is the same request straight to the backend.
func BenchmarkDirectGET(b *testing.B) {
	list := []sites.Site{{ID: 1, Slug: "bench", Domain: "bench.localhost", LocalDomain: "bench.localhost", Enabled: true}}
	bs := newBackends(b, list)
	benchGET(b, "http://"+bs.addr["bench"]+"/plain", "bench.localhost")
}

func benchGET(b *testing.B, url, host string) {
	tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = host
		for pb.Next() {
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatal("status " + strconv.Itoa(resp.StatusCode))
			}
		}
	})
}

// BenchmarkEngineColdStart is the first request through the proxy to a
// stopped site. overhead-ms/op is the time from the backend's listen() to
// the client holding the answer: what siteplex adds to the backend's own
// boot (readiness polling, forwarding).
func BenchmarkEngineColdStart(b *testing.B) {
	list := demoSites(b)
	e, addr := startRealEngine(b, Config{Config: supervisor.Config{Project: pxProject(b), Command: demoChildCmd(b)},
		LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
	ctx := context.Background()
	var overhead, total time.Duration
	for b.Loop() {
		t0 := time.Now()
		pxGet(b, addr, "one.example", "/plain", nil)
		got := time.Now()
		total += got.Sub(t0)
		b.StopTimer()
		listenAt := int64(0)
		for _, l := range e.Logs("one", 0) {
			if v, ok := strings.CutPrefix(l.Text, "listen-at "); ok {
				listenAt, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		if listenAt == 0 {
			b.Fatal("no listen-at line in the demo site's log")
		}
		overhead += got.Sub(time.Unix(0, listenAt))
		if err := e.StopSite(ctx, "one"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(overhead.Microseconds())/1000/float64(b.N), "overhead-ms/op")
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "first-request-ms/op")
}

// BenchmarkProxyGETHostRewrite is BenchmarkProxyGET on a site's local
// name with rewrite_host never and always, in the same run: what Host
// rewriting costs a request (docs/engine.md, "Host rewriting").
func BenchmarkProxyGETHostRewrite(b *testing.B) {
	for _, policy := range []RewriteHost{RewriteNever, RewriteAlways} {
		b.Run(string(policy), func(b *testing.B) {
			list := []sites.Site{{ID: 1, Slug: "bench", Domain: "www.bench.example", LocalDomain: "bench.localhost", Enabled: true, Aliases: []string{}}}
			bs := newBackends(b, list)
			e, err := New(Config{Config: supervisor.Config{Project: pxProject(b)}, Listen: []string{"127.0.0.1:0"}, RewriteHost: policy,
				LoadSites: func(context.Context) ([]sites.Site, error) { return list, nil }})
			if err != nil {
				b.Fatal(err)
			}
			e.acquire = func(ctx context.Context, r *siteRoute) (string, func(), error) {
				return bs.addr["bench"], func() {}, nil
			}
			addr := startEngine(b, e)
			if got := e.table.Load().bySlug["bench"].upstream; (got != "") != (policy == RewriteAlways) {
				b.Fatalf("rewrite %s: upstream %q", policy, got)
			}
			benchGET(b, "http://"+addr+"/plain", "bench.localhost")
		})
	}
}

// BenchmarkEngineStartDjango is Start of an engine over the djfixed
// fixture (a Django project whose database is named in its settings)
// until it serves: with the introspection cache valid (warm: no Python
// runs, docs/django.md "The cache") and with it removed (cold: Django's
// own start-up). ns/op is New + Start + the first /api/status answer.
func BenchmarkEngineStartDjango(b *testing.B) {
	dir := testenv.DjangoFixture(b, "djfixed", true)
	for _, warm := range []bool{true, false} {
		name := "cold"
		if warm {
			name = "warm"
		}
		b.Run(name, func(b *testing.B) {
			cache := filepath.Join(dir, ".siteplex", "django.json")
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if !warm {
					_ = os.Remove(cache)
				} else if i == 0 {
					p, _ := sites.Load(sites.Options{Project: dir, Python: testenv.Python})
					if _, err := p.Django(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				p, err := sites.Load(sites.Options{Project: dir, Python: testenv.Python})
				if err != nil {
					b.Fatal(err)
				}
				e, err := New(Config{Config: supervisor.Config{Project: p, Python: testenv.Python}, LoadSites: projectSites(p), Listen: []string{"127.0.0.1:0"}})
				if err != nil {
					b.Fatal(err)
				}
				if err := e.Start(context.Background()); err != nil {
					b.Fatal(err)
				}
				resp, err := http.Get("http://" + e.Addrs()[0] + "/api/status")
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				b.StopTimer()
				if s := e.ident.Load(); s == nil || s.overlay == nil {
					b.Fatalf("no overlay: %+v", s)
				}
				_ = e.Close(context.Background())
				b.StartTimer()
			}
		})
	}
}

// BenchmarkEngineFirstHandshake is a client's first TLS handshake, over
// loopback TCP, with the engine's HTTPS listener for a name it routes but
// never served (a new name under a site's local domain): the routing
// table is asked, the leaf generated, signed and written to the disk
// cache, and the client verifies the chain. The target is under 10 ms
// (docs/https.md, "Figures").
func BenchmarkEngineFirstHandshake(b *testing.B) {
	list := pxSites()
	he := startHTTPSEngine(b, list, newBackends(b, list), HTTPSConfig{})
	pool := he.pool()
	i := 0
	for b.Loop() {
		i++
		c, err := tls.Dial("tcp", he.https, &tls.Config{ServerName: fmt.Sprintf("n%d.gh.localhost", i), RootCAs: pool})
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkEngineCachedHandshake is the same handshake for a name whose
// leaf is in memory.
func BenchmarkEngineCachedHandshake(b *testing.B) {
	list := pxSites()
	he := startHTTPSEngine(b, list, newBackends(b, list), HTTPSConfig{})
	pool := he.pool()
	for b.Loop() {
		c, err := tls.Dial("tcp", he.https, &tls.Config{ServerName: "gh.localhost", RootCAs: pool})
		if err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}
