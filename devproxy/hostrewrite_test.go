package devproxy

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/sites/django"
)

func TestRewriteLocation(t *testing.T) {
	tests := []struct {
		loc, browser string
		tls          bool
		want         string // "" = unchanged
	}{
		{"http://www.acme.example/landed/?a=1", "acme.localhost:8080", false, "http://acme.localhost:8080/landed/?a=1"},
		{"https://WWW.ACME.EXAMPLE/x", "acme.localhost", false, "http://acme.localhost/x"},
		{"http://www.acme.example:8000/x", "acme.localhost", true, "https://acme.localhost/x"},
		{"//www.acme.example/shop/", "acme.localhost", false, "//acme.localhost/shop/"},
		{"/relative/", "acme.localhost", false, ""},
		{"http://other.example/x", "acme.localhost", false, ""},
		{"mailto:x@www.acme.example", "acme.localhost", false, ""},
		{"http://user@www.acme.example/", "acme.localhost", false, ""},
	}
	for _, tt := range tests {
		got, ok := rewriteLocation(tt.loc, "www.acme.example", tt.browser, tt.tls)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("rewriteLocation(%q, %s) = %q, want %q", tt.loc, tt.browser, got, tt.want)
		}
	}
}

func TestRewriteCookieDomain(t *testing.T) {
	tests := []struct {
		cookie, domain, want string // want "" = unchanged
	}{
		{"sessionid=abc; Domain=www.acme.example; Path=/; HttpOnly", "acme.localhost", "sessionid=abc; Domain=acme.localhost; Path=/; HttpOnly"},
		{"sessionid=abc; domain=.acme.example; Path=/", "acme.localhost", "sessionid=abc; Domain=acme.localhost; Path=/"},
		{"csrftoken=x; Domain=acme.example; Secure", "", "csrftoken=x; Secure"},
		{"other=1; Domain=other.example", "acme.localhost", ""},
		{"plain=1; Path=/", "acme.localhost", ""},
		{"tricky=a;b; Domain=notacme.example", "acme.localhost", ""},
	}
	for _, tt := range tests {
		got, ok := rewriteCookieDomain(tt.cookie, "www.acme.example", tt.domain)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("rewriteCookieDomain(%q, %q) = %q, want %q", tt.cookie, tt.domain, got, tt.want)
		}
	}
}

func TestRewriteAnswerCookieScope(t *testing.T) {
	for _, tt := range []struct{ browser, want string }{
		{"acme.localhost:8080", "Domain=acme.localhost"},   // the local domain: its subdomains share it
		{"static.acme.localhost", "Domain=acme.localhost"}, // a subdomain of it
		{"localhost", ""},      // forced site, cookie override: host-only
		{"127.0.0.1:8080", ""}, // an IP: host-only
	} {
		h := http.Header{"Set-Cookie": {"s=1; Domain=acme.example; Path=/"}, "Location": {"http://www.acme.example/"}}
		rewriteAnswer(h, "www.acme.example", tt.browser, "acme.localhost", false)
		c := h.Get("Set-Cookie")
		if tt.want == "" && strings.Contains(c, "Domain") || tt.want != "" && !strings.Contains(c, tt.want) {
			t.Errorf("browser %s: Set-Cookie %q, want %q", tt.browser, c, tt.want)
		}
		if l := h.Get("Location"); l != "http://"+tt.browser+"/" {
			t.Errorf("browser %s: Location %q", tt.browser, l)
		}
	}
}

func TestUpstreamForPolicy(t *testing.T) {
	wag := sites.Site{ID: 2, Domain: "Blog.Example:8000", Origin: sites.Origin{Source: sites.SourceWagtail}}
	plain := sites.Site{ID: 3, Domain: "shop.example"}
	multi := sites.Site{ID: 4, Domain: "multi.example", CanonicalAlias: "www.multi.example", Aliases: []string{"www.multi.example", "*.multi.example"}}
	ms := &django.Info{}
	ms.Frameworks.Multisite = true
	tests := []struct {
		policy RewriteHost
		site   *sites.Site
		info   *django.Info
		want   string
	}{
		{RewriteAuto, &wag, nil, "blog.example:8000"},
		{RewriteAuto, &plain, nil, ""},
		{RewriteAuto, &plain, ms, "shop.example"},
		{RewriteAuto, &multi, ms, "www.multi.example"},
		{RewriteAlways, &plain, nil, "shop.example"},
		{RewriteNever, &wag, nil, ""},
	}
	for _, tt := range tests {
		if got := upstreamFor(tt.policy, tt.site, tt.info); got != tt.want {
			t.Errorf("upstreamFor(%s, %s) = %q, want %q", tt.policy, tt.site.Domain, got, tt.want)
		}
	}
	if _, err := ParseRewriteHost("sometimes"); err == nil || !sites.IsUsage(err) {
		t.Errorf("ParseRewriteHost(sometimes) = %v, want a usage error", err)
	}
}

// TestWildcardAliasRouting: exact names first, then wildcard aliases, the
// most literal one first, ports honoured, the apex and IP addresses never
// matched, "*" never routed (and reported).
func TestWildcardAliasRouting(t *testing.T) {
	list := []sites.Site{
		{ID: 1, Domain: "shop.example", Aliases: []string{"*.shop.example"}},
		{ID: 2, Domain: "eu.shop.example", Aliases: []string{"*.eu.shop.example", "*.dev.example:8000"}},
		{ID: 3, Domain: "catchall.example", Aliases: []string{"*"}},
	}
	df, _ := sites.ParseDomainFormat("{slug}.localhost")
	sites.Finalize(list, df, 0)
	tab := buildTable(list, 0, map[string]*atomic.Int64{}, routeOpts{})
	for _, tt := range []struct {
		host string
		want int64 // 0: foreign
	}{
		{"shop.example", 1},
		{"a.shop.example", 1},
		{"A.B.Shop.Example:80", 1},
		{"eu.shop.example", 2},
		{"x.eu.shop.example", 2},
		{"x.dev.example:8000", 2},
		{"x.dev.example", 0},
		{"dev.example:8000", 0},
		{"nowhere.example", 0},
		{"10.0.0.1", 0},
	} {
		kind, rt := tab.lookup(tt.host)
		var got int64
		if kind == toSite {
			got = rt.site.ID
		}
		if got != tt.want {
			t.Errorf("lookup(%s) = site %d, want %d", tt.host, got, tt.want)
		}
	}
	if len(tab.unrouted) != 1 || !strings.Contains(tab.unrouted[0], "*") {
		t.Errorf("unrouted: %v", tab.unrouted)
	}
	// The site with "*" is routed on its own names, and its problems say
	// "*" is not.
	if kind, rt := tab.lookup("catchall.example"); kind != toSite || rt.site.ID != 3 || !strings.Contains(strings.Join(rt.site.Problems, ";"), "alias * is not routed") {
		t.Errorf("catchall.example: %v %+v", kind, rt)
	}
	allocs := testing.AllocsPerRun(200, func() { tab.lookup("x.eu.shop.example:8080") })
	if allocs != 0 {
		t.Errorf("a wildcard lookup allocates %.0f times", allocs)
	}
}

// TestProxyRoutesWildcardAliases: a request on a name only a wildcard
// alias matches reaches that site's process with its Host unchanged; the
// index lists the wildcard.
func TestProxyRoutesWildcardAliases(t *testing.T) {
	list := []sites.Site{
		{ID: 1, Domain: "shop.example", Aliases: []string{"*.shop.example"}},
		{ID: 2, Domain: "blog.example", Aliases: []string{"*"}},
	}
	df, _ := sites.ParseDomainFormat("{slug}.localhost")
	sites.Finalize(list, df, 0)
	bs := newBackends(t, list)
	_, addr := startTestEngine(t, list, bs, 0)
	resp, b := pxGet(t, addr, "eu.shop.example", "/whoami", nil)
	if w := pxWhoami(t, b); resp.StatusCode != 200 || w.SiteID != "1" || w.Host != "eu.shop.example" {
		t.Errorf("eu.shop.example: HTTP %d %+v", resp.StatusCode, w)
	}
	if resp, _ := pxGet(t, addr, "eu.blog.example", "/whoami", nil); resp.StatusCode != 404 {
		t.Errorf("eu.blog.example: HTTP %d, want the foreign 404", resp.StatusCode)
	}
	_, b = pxGet(t, addr, IndexHost, "/", map[string]string{"Accept": "application/json"})
	if !strings.Contains(string(b), `"*.shop.example"`) {
		t.Errorf("index JSON lacks the wildcard: %s", b)
	}
	// "*" is not routed: the index says so on its site's row, which keeps
	// its state and link (the site answers on its other names).
	_, b = pxGet(t, addr, IndexHost, "/", nil)
	page := string(b)
	if !strings.Contains(page, "alias * is not routed") || !strings.Contains(page, `href="http://blog-example.localhost:`) || !strings.Contains(page, "○ stopped<br>") {
		t.Errorf("index page:\n%s", page)
	}
	if resp, _ := pxGet(t, addr, "blog.example", "/whoami", nil); resp.StatusCode != 200 {
		t.Errorf("blog.example: HTTP %d", resp.StatusCode)
	}
}
