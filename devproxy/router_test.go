package devproxy

import (
	"sync/atomic"
	"testing"

	"github.com/siteplex/siteplex/sites"
)

func pxStrp(s string) *string { return &s }

// testSites is a small multisite table: aliases, a real domain, a port in
// a domain, a disabled site, a problem site and a name clash.
func pxSites() []sites.Site {
	return []sites.Site{
		{ID: 1, Name: "Germany", Domain: "example.de", Slug: "de", Enabled: true,
			Aliases: []string{"example.de", "de.example-stage.eu"}, RealDomain: pxStrp("www.example.de"),
			LocalDomain: "de.localhost"},
		{ID: 2, Name: "Ghana", Domain: "example.gh", Slug: "gh", Enabled: true,
			Aliases: []string{"gh.example-stage.eu"}, LocalDomain: "gh.localhost"},
		{ID: 3, Name: "Port", Domain: "Example.ORG:8000", Slug: "example-org", Enabled: true,
			Aliases: []string{}, LocalDomain: "example-org.localhost"},
		{ID: 4, Name: "Off", Domain: "off.example", Slug: "off", Enabled: false,
			Aliases: []string{}, LocalDomain: "off.localhost"},
		{ID: 5, Name: "Evil", Domain: "bad domain", Slug: "evil", Enabled: true,
			Aliases: []string{}, LocalDomain: "evil.localhost", Problems: []string{"domain is not a valid hostname"}},
		// An alias that is site 1's domain: the domain wins.
		{ID: 6, Name: "Clash", Domain: "clash.example", Slug: "clash", Enabled: true,
			Aliases: []string{"example.de"}, LocalDomain: "clash.localhost"},
	}
}

func TestRouteLookup(t *testing.T) {
	tab := buildTable(pxSites(), 2, map[string]*atomic.Int64{}, routeOpts{})
	tests := []struct {
		host string
		kind routeKind
		slug string
	}{
		{"example.de", toSite, "de"},
		{"EXAMPLE.DE:80", toSite, "de"},
		{"www.example.de", toSite, "de"},
		{"de.example-stage.eu", toSite, "de"},
		{"de.localhost", toSite, "de"},
		{"de.localhost:8080", toSite, "de"},
		{"static.de.localhost", toSite, "de"},
		{"a.b.gh.localhost", toSite, "gh"},
		{"example.gh", toSite, "gh"},
		{"gh.example-stage.eu", toSite, "gh"},
		{"example.org", toSite, "example-org"},
		{"example.org:8000", toSite, "example-org"},
		{"example.de.", toSite, "de"},
		{"clash.example", toSite, "clash"},
		{"localhost", toLocal, ""},
		{"localhost:8080", toLocal, ""},
		{"127.0.0.1", toLocal, ""},
		{"127.0.0.1:80", toLocal, ""},
		{"[::1]", toLocal, ""},
		{"[::1]:8080", toLocal, ""},
		{"siteplex.localhost", toIndex, ""},
		{"unknown.example", toForeign, ""},
		{"localhost.evil.example", toForeign, ""},
		{"off.example", toForeign, ""},
		{"off.localhost", toForeign, ""},
		{"evil.localhost", toForeign, ""},
		{"bad domain", toForeign, ""},
		{"", toForeign, ""},
		{"xde.localhost", toForeign, ""},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			kind, rt := tab.lookup(tt.host)
			slug := ""
			if rt != nil {
				slug = rt.site.Slug
			}
			if kind != tt.kind || slug != tt.slug {
				t.Errorf("lookup(%q) = %v %q, want %v %q", tt.host, kind, slug, tt.kind, tt.slug)
			}
		})
	}
	if tab.forcedRoute == nil || tab.forcedRoute.site.Slug != "gh" {
		t.Errorf("forced route = %v, want gh", tab.forcedRoute)
	}
}

func TestRouteLookupAllocs(t *testing.T) {
	tab := buildTable(pxSites(), 2, map[string]*atomic.Int64{}, routeOpts{})
	for _, h := range []string{"example.de", "De.Localhost:8080", "static.gh.localhost", "unknown.example"} {
		if n := testing.AllocsPerRun(100, func() { tab.lookup(h) }); n != 0 {
			t.Errorf("lookup(%q) allocates %.0f times, want 0", h, n)
		}
	}
}

func TestCountersSurviveRebuild(t *testing.T) {
	counters := map[string]*atomic.Int64{}
	a := buildTable(pxSites(), 0, counters, routeOpts{})
	a.bySlug["gh"].requests.Add(3)
	b := buildTable(pxSites(), 0, counters, routeOpts{})
	if got := b.bySlug["gh"].requests.Load(); got != 3 {
		t.Errorf("after rebuild gh has %d requests, want 3", got)
	}
}

func BenchmarkRouteLookup(b *testing.B) {
	list := pxSites()
	for i := range 200 {
		list = append(list, sites.Site{ID: int64(100 + i), Slug: "s" + string(rune('a'+i%26)) + string(rune('a'+i/26)),
			Domain: "site" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".example", Enabled: true})
	}
	sites.Finalize(list, pxFormat(b), 0)
	tab := buildTable(list, 0, map[string]*atomic.Int64{}, routeOpts{})
	b.ReportAllocs()
	for b.Loop() {
		tab.lookup("static.gh.localhost:8080")
	}
}

func pxFormat(tb testing.TB) sites.DomainFormat {
	df, err := sites.ParseDomainFormat("{slug}.localhost")
	if err != nil {
		tb.Fatal(err)
	}
	return df
}
