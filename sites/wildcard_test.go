package sites_test

import (
	"slices"
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

// TestFinalizeUnroutedNames: a name siteplex never routes is listed as a
// problem of its site, which is still routed on its other names: a
// django-multisite alias "*" (or "*:port"), and the folder routes of a
// django-pgschemas tenant that has a domain too.
func TestFinalizeUnroutedNames(t *testing.T) {
	list := []sites.Site{
		{ID: 1, Domain: "shop.example", Aliases: []string{"shop.example", "*.shop.example"}},
		{ID: 2, Domain: "other.example", Aliases: []string{"other.example", "*"}},
		{ID: 3, Domain: "port.example", Aliases: []string{"*:8000", "*.*.port.example"}},
		{ID: 4, Domain: "t.example", Aliases: []string{"t.example"}, CanonicalAlias: "t.example",
			Origin: sites.Origin{Source: sites.SourcePGSchemas, Schema: "t", Folders: []string{"shared.example/t", "shared.example/t2"}}},
	}
	df, err := sites.ParseDomainFormat("{slug}.localhost")
	if err != nil {
		t.Fatal(err)
	}
	sites.Finalize(list, df, 0)
	want := map[int64][]string{
		1: nil,
		2: {"alias * is not routed: it would send every name to this site, and siteplex forwards no name it does not know; the site answers on its other names"},
		3: {"alias *:8000 is not routed: it would send every name to this site, and siteplex forwards no name it does not know; the site answers on its other names",
			"alias *.*.port.example is not routed: django-multisite matches a * in the first label only"},
		4: {"folder route shared.example/t, shared.example/t2 not routed: siteplex routes by host name, so open it through the site of that domain"},
	}
	for _, s := range list {
		if !slices.Equal(s.Problems, want[s.ID]) && !(len(s.Problems) == 0 && want[s.ID] == nil) {
			t.Errorf("site %d problems %q\nwant %q", s.ID, s.Problems, want[s.ID])
		}
		if !s.Usable() {
			t.Errorf("site %d is not usable: %q", s.ID, s.Problems)
		}
	}
}
