package sites_test

import (
	"testing"

	"github.com/siteplex/siteplex/sites"
)

// TestWildcardRank follows django-multisite's alias resolution
// (docs/sites.md, "Wildcard aliases").
func TestWildcardRank(t *testing.T) {
	tests := []struct {
		pattern, host string
		ok            bool
	}{
		{"*.acme.example", "x.acme.example", true},
		{"*.acme.example", "a.b.acme.example", true}, // any depth
		{"*.acme.example", "acme.example", false},    // not the apex
		{"*.acme.example", "xacme.example", false},
		{"*.acme.example", "x.acme.example:8000", true}, // no port in the pattern: any port
		{"*.acme.example", "X.ACME.Example.", true},     // case and a trailing dot
		{"*.acme.example:8000", "x.acme.example:8000", true},
		{"*.acme.example:8000", "x.acme.example", false}, // the Host must carry the port
		{"*.acme.example:8000", "x.acme.example:9000", false},
		{"*.com", "shop.com", true},
		{"*", "anything.example", true},
		{"*", "127.0.0.1", true}, // only * matches an IP
		{"*.0.0.1", "127.0.0.1", false},
		{"*:8000", "a.example:8000", true},
		{"*:8000", "a.example", false},
		{"foo.*.com", "foo.bar.com", false}, // only a leading * label
		{"*.*.example", "a.b.example", false},
		{"acme.example", "acme.example", false}, // not a wildcard
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.host, func(t *testing.T) {
			if _, ok := sites.WildcardRank(tt.pattern, tt.host); ok != tt.ok {
				t.Errorf("WildcardRank(%q, %q) ok = %v, want %v", tt.pattern, tt.host, ok, tt.ok)
			}
		})
	}
}

func TestBestWildcard(t *testing.T) {
	list := []sites.Site{
		{ID: 1, Aliases: []string{"one.example", "*"}},
		{ID: 2, Aliases: []string{"*.example"}},
		{ID: 3, Aliases: []string{"*.shop.example"}},
		{ID: 4, Aliases: []string{"*.shop.example:8000"}},
		{ID: 5, Aliases: []string{"*.deep.shop.example"}, Problems: []string{"not usable"}},
	}
	tests := []struct {
		host  string
		id    int64
		alias string
	}{
		{"a.shop.example", 3, "*.shop.example"},
		{"a.shop.example:8000", 4, "*.shop.example:8000"}, // the port pattern first at equal depth
		{"a.b.shop.example:9000", 3, "*.shop.example"},
		{"x.deep.shop.example", 3, "*.shop.example"}, // site 5 has problems: never routed
		{"other.example", 2, "*.example"},
		{"other.test", 1, "*"},
	}
	for _, tt := range tests {
		s, alias := sites.BestWildcard(list, tt.host)
		if s == nil || s.ID != tt.id || alias != tt.alias {
			t.Errorf("BestWildcard(%q) = %v %q, want site %d %q", tt.host, s, alias, tt.id, tt.alias)
		}
	}
	if !list[2].MatchesWildcard("x.shop.example") || list[2].MatchesWildcard("shop.example") {
		t.Error("MatchesWildcard")
	}
	if w := list[0].Wildcards(); len(w) != 1 || w[0] != "*" {
		t.Errorf("Wildcards() = %q", w)
	}
}
