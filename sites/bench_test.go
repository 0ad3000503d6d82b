package sites_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/sites"
)

// benchSites is the size of the benchmark projects (target: under 100 ms
// to load them, connection included).
const benchSites = 10000

// bulkSQL fills the three tables with n sites; two thirds have a
// multisite-plus row (every tenth disabled), each has a canonical alias and
// every other one a non-canonical alias. It runs on every engine.
func bulkSQL(n int) []string {
	seq := fmt.Sprintf(`WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < %d) `, n)
	return []string{
		`INSERT INTO django_site (id, domain, name) ` + seq + `SELECT i, 'site' || i || '.example.com', 'Site ' || i FROM seq`,
		`INSERT INTO django_multisite_plus_site (site_id, real_domain, slug, is_enabled, last_updated_at, extra_uwsgi_ini) ` + seq +
			`SELECT i, 'www.site' || i || '.example.com', 's' || i, i % 10 <> 0, CURRENT_TIMESTAMP, '' FROM seq WHERE i % 3 <> 0`,
		`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) ` + seq +
			`SELECT 'site' || i || '.example.com', i, TRUE, TRUE FROM seq`,
		`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) ` + seq +
			`SELECT 'alias' || i || '.example.net', i, NULL, TRUE FROM seq WHERE i % 2 = 0`,
	}
}

func benchLoad(b *testing.B, e engine) {
	u, db := e.create(b)
	ctx := context.Background()
	for _, q := range append(append([]string{}, e.ddl[:]...), bulkSQL(benchSites)...) {
		if _, err := db.ExecContext(ctx, q); err != nil {
			b.Fatalf("%s: %v\n%s", e.name, err, q)
		}
	}
	dir := writeFiles(b, map[string]string{"manage.py": "", ".env-local": "SITE_ID=42\n"})
	p, err := sites.Load(sites.Options{Project: dir, DB: u, Getenv: noEnv})
	if err != nil {
		b.Fatal(err)
	}
	d, err := p.ResolveDB(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	// The machine is shared, so wall time depends on the neighbours: also
	// report this process's CPU time per load (user+system, GC included),
	// which does not. For PostgreSQL the server's share is not in it.
	cpu0 := cpuTime()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		n++
		// What `siteplex sites` does: connect, detect tables, read, finalise.
		st, err := sites.Open(ctx, d, false)
		if err != nil {
			b.Fatal(err)
		}
		list, err := p.LoadSites(ctx, st)
		st.Close()
		if err != nil {
			b.Fatal(err)
		}
		if len(list) != benchSites || !list[41].Forced {
			b.Fatalf("loaded %d sites", len(list))
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/1000/float64(n), "cpu-ms/op")
	b.ReportMetric(float64(benchSites), "sites/op")
}

// cpuTime is the CPU time this process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkLoadSitesPostgres(b *testing.B) { benchLoad(b, pgEngine(b)) }

func BenchmarkLoadSitesSQLite(b *testing.B) { benchLoad(b, sqliteEngine()) }

func BenchmarkLoadSitesMariaDB(b *testing.B) { benchLoad(b, mysqlEngine(b)) }

// BenchmarkFinalize is siteplex's own share of a load, without the
// database: slugs, local domains and validation of 10,000 sites.
func BenchmarkFinalize(b *testing.B) {
	raw := make([]sites.Site, benchSites)
	for i := range raw {
		n := int64(i + 1)
		raw[i] = sites.Site{ID: n, Name: fmt.Sprintf("Site %d", n), Domain: fmt.Sprintf("site%d.example.com", n)}
		if n%3 != 0 {
			r := fmt.Sprintf("www.site%d.example.com", n)
			raw[i].PlusRow, raw[i].PlusSlug, raw[i].RealDomain = true, fmt.Sprintf("s%d", n), &r
		}
	}
	df, _ := sites.ParseDomainFormat(sites.DefaultDomainFormat)
	list := make([]sites.Site, len(raw))
	for b.Loop() {
		copy(list, raw)
		sites.Finalize(list, df, 42)
	}
}
