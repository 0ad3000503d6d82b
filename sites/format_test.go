package sites_test

import (
	"testing"

	"github.com/siteplex/siteplex/sites"
)

func TestDomainFormat(t *testing.T) {
	tests := []struct{ format, want string }{
		{"{slug}.localhost", "gh.localhost"},
		{"{}.divio.me", "gh.divio.me"},
		{"{0}.{0}.example", "gh.gh.example"},
		{"site-{id}.localhost", "site-2.localhost"},
		{"{slug}-{id}.test", "gh-2.test"},
		{"{{{}}}.x", "{gh}.x"},
		{"{{slug}}", "{slug}"},
		{"plain.example", "plain.example"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			df, err := sites.ParseDomainFormat(tt.format)
			if err != nil {
				t.Fatalf("ParseDomainFormat: %v", err)
			}
			if got := df.Apply("gh", 2); got != tt.want {
				t.Errorf("Apply = %q, want %q", got, tt.want)
			}
			if df.String() != tt.format {
				t.Errorf("String = %q", df.String())
			}
		})
	}
}

func TestDomainFormatErrors(t *testing.T) {
	tests := []struct{ format, want string }{
		{"{name}.localhost", `domain format "{name}.localhost": unknown field {name} (use {slug}, {id}, {schema}, {} or {0})`},
		{"{1}.localhost", `domain format "{1}.localhost": unknown field {1} (use {slug}, {id}, {schema}, {} or {0})`},
		{"{0.upper}.x", `domain format "{0.upper}.x": unknown field {0.upper} (use {slug}, {id}, {schema}, {} or {0})`},
		{"{:>5}.x", `domain format "{:>5}.x": unknown field {:>5} (use {slug}, {id}, {schema}, {} or {0})`},
		{"{}.{0}", `domain format "{}.{0}": cannot switch from automatic field numbering {} to manual {0}`},
		{"{slug.localhost", `domain format "{slug.localhost": unmatched '{'`},
		{"slug}.localhost", `domain format "slug}.localhost": single '}' encountered`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			_, err := sites.ParseDomainFormat(tt.format)
			if err == nil {
				t.Fatal("no error")
			}
			if !sites.IsUsage(err) {
				t.Errorf("not a usage error: %v", err)
			}
			if err.Error() != tt.want {
				t.Errorf("message\n got  %s\n want %s", err, tt.want)
			}
		})
	}
}

func TestDeriveSlug(t *testing.T) {
	tests := []struct{ domain, want string }{
		{"example.com", "example-com"},
		{"www.example.com", "example-com"},
		{"WWW.Example.COM:8000", "example-com"},
		{"example.org:8000", "example-org"},
		{"bücher.example", "bcher-example"},
		{"my site.example", "mysite-example"},
		{"a_b.example", "ab-example"},
		{"www.", ""},
		{"", ""},
		{"sub.www.example", "sub-www-example"},
	}
	for _, tt := range tests {
		if got := sites.DeriveSlug(tt.domain); got != tt.want {
			t.Errorf("DeriveSlug(%q) = %q, want %q", tt.domain, got, tt.want)
		}
	}
}

func TestHostname(t *testing.T) {
	tests := []struct{ domain, want, err string }{
		{"example.com", "example.com", ""},
		{"Example.COM:8000", "example.com", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"BÜCHER.example", "xn--bcher-kva.example", ""},
		{"example.com.", "example.com", ""},
		{"", "", "empty domain"},
		{"a b.example", "", `domain "a b.example" contains whitespace`},
		{"a\tb.example", "", `domain "a\tb.example" contains a control character`},
		{"a.example\n127.0.0.1 evil", "", `domain "a.example\n127.0.0.1 evil" contains a control character`},
		{"a#b.example", "", `domain "a#b.example" contains '#'`},
		{"a.example:80x", "", `domain "a.example:80x" has an invalid port`},
		{"under_score.example", "", `domain "under_score.example" is not a valid hostname: label "under_score" contains '_'`},
		{"-lead.example", "", `domain "-lead.example" is not a valid hostname: label "-lead" starts or ends with a hyphen`},
		{"a..b", "", `domain "a..b" is not a valid hostname: empty label`},
		{"a.example..", "", `domain "a.example.." is not a valid hostname: empty label`},
		{".a.example", "", `domain ".a.example" is not a valid hostname: empty label`},
		{"*.example.com", "", `domain "*.example.com" is not a valid hostname: label "*" contains '*'`},
	}
	for _, tt := range tests {
		got, err := sites.Hostname(tt.domain)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if got != tt.want || msg != tt.err {
			t.Errorf("Hostname(%q) = %q, %q; want %q, %q", tt.domain, got, msg, tt.want, tt.err)
		}
	}
	long := ""
	for len(long) < 250 {
		long += "abcdefghij."
	}
	if _, err := sites.Hostname(long + "example"); err == nil {
		t.Errorf("a %d-character name passed", len(long)+7)
	}
}

func TestFinalizeSlugCollisions(t *testing.T) {
	// Site 9 has the multisite-plus slug "example-org"; 4 and 8 derive the
	// same slug from their domains: among derived slugs the higher id yields,
	// and a stored slug always wins.
	list := []sites.Site{
		{ID: 8, Domain: "www.example.org"},
		{ID: 4, Domain: "example.org:8000"},
		{ID: 9, Domain: "x.example", PlusRow: true, PlusSlug: "example-org", RealDomain: str("")},
		{ID: 3, Domain: "EXAMPLE.net"},
		{ID: 5, Domain: "example.net"},
	}
	df, _ := sites.ParseDomainFormat(sites.DefaultDomainFormat)
	sites.Finalize(list, df, 0)
	want := map[int64]string{3: "example-net", 4: "example-org-4", 5: "example-net-5", 8: "example-org-8", 9: "example-org"}
	for _, s := range list {
		if s.Slug != want[s.ID] {
			t.Errorf("site %d: slug %q, want %q", s.ID, s.Slug, want[s.ID])
		}
		if len(s.Problems) != 0 {
			t.Errorf("site %d: problems %q", s.ID, s.Problems)
		}
	}
	if list[0].ID != 3 {
		t.Errorf("Finalize did not sort by id: first is %d", list[0].ID)
	}
}

func TestFinalizeEmptySlug(t *testing.T) {
	list := []sites.Site{{ID: 1, Domain: "www."}}
	df, _ := sites.ParseDomainFormat(sites.DefaultDomainFormat)
	sites.Finalize(list, df, 1)
	s := list[0]
	if s.Slug != "" || s.LocalDomain != "" || !s.Forced {
		t.Errorf("got slug %q local %q forced %v", s.Slug, s.LocalDomain, s.Forced)
	}
	want := []string{"empty slug"}
	if len(s.Problems) != 1 || s.Problems[0] != want[0] {
		t.Errorf("problems = %q, want %q", s.Problems, want)
	}
}

func TestFind(t *testing.T) {
	list := []sites.Site{
		{ID: 2, Domain: "example.gh", Slug: "gh", LocalDomain: "gh.localhost", RealDomain: str("www.example.gh"), Aliases: []string{"gh.example-stage.eu"}},
		{ID: 4, Domain: "Example.org:8000", Slug: "example-org", LocalDomain: "example-org.localhost"},
	}
	for key, id := range map[string]int64{
		"2": 2, "gh": 2, "GH": 2, "example.gh": 2, "gh.localhost": 2, "www.example.gh": 2, "gh.example-stage.eu": 2,
		"4": 4, "example.org": 4, "example.org:8000": 4, "example-org": 4,
	} {
		s, ok := sites.Find(list, key)
		if !ok || s.ID != id {
			t.Errorf("Find(%q) = %v, %v; want site %d", key, s, ok, id)
		}
	}
	if _, ok := sites.Find(list, "nope"); ok {
		t.Error("Find(nope) found a site")
	}
	err := sites.UnknownSiteError(list, "gha")
	if !sites.IsUsage(err) || err.Error() != `unknown site "gha"; closest: 2 gh (example.gh)` {
		t.Errorf("UnknownSiteError = %v", err)
	}
}
