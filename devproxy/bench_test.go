package devproxy

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/siteplex/siteplex/sites"
)

// BenchmarkProxyGET measures a small GET through the engine (fast path) to
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
