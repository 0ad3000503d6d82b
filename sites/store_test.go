package sites_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

func str(s string) *string { return &s }

// writeFiles creates a project folder holding files (path → content).
func writeFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// noEnv is an empty process environment, so the developer's DATABASE_URL
// never leaks into a test.
func noEnv(string) string { return "" }

// loadSites does what `siteplex sites` does: find the project, resolve and
// open its database (declared sites alone when there is none), read.
func loadSites(t testing.TB, opts sites.Options) ([]sites.Site, error) {
	t.Helper()
	if opts.Getenv == nil {
		opts.Getenv = noEnv
	}
	ctx := context.Background()
	p, err := sites.Load(opts)
	if err != nil {
		return nil, err
	}
	list, _, _, err := p.ReadSites(ctx, nil)
	return list, err
}

// mustLoad is loadSites that fails the test on error.
func mustLoad(t testing.TB, opts sites.Options) []sites.Site {
	t.Helper()
	list, err := loadSites(t, opts)
	if err != nil {
		t.Fatalf("loading sites: %v", err)
	}
	return list
}

// compareSites compares the JSON contract of got and want, site by site.
// A want without a Source is a django_site row.
func compareSites(t *testing.T, got, want []sites.Site) {
	t.Helper()
	for i := range want {
		if want[i].Source == "" {
			want[i].Source = sites.SourceDjangoSite
		}
		if want[i].Aliases == nil {
			want[i].Aliases = []string{}
		}
		if want[i].Problems == nil {
			want[i].Problems = []string{}
		}
	}
	n := max(len(got), len(want))
	for i := 0; i < n; i++ {
		var g, w []byte
		if i < len(got) {
			g, _ = json.Marshal(got[i])
		}
		if i < len(want) {
			w, _ = json.Marshal(want[i])
		}
		if string(g) != string(w) {
			t.Errorf("site #%d:\n got  %s\n want %s", i, g, w)
		}
	}
}

func TestSitesPlainDjangoSite(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		u := e.build(t, fixture{Sites: []fxSite{
			{ID: 1, Domain: "example.com", Name: "example.com"},
			{ID: 2, Domain: "Foo.Example:8000", Name: "Foo"},
		}})
		dir := writeFiles(t, map[string]string{"manage.py": ""})
		got := mustLoad(t, sites.Options{Project: dir, DB: u})
		compareSites(t, got, []sites.Site{
			{ID: 1, Name: "example.com", Domain: "example.com", Slug: "example-com", Enabled: true, LocalDomain: "example-com.localhost"},
			{ID: 2, Name: "Foo", Domain: "Foo.Example:8000", Slug: "foo-example", Enabled: true, LocalDomain: "foo-example.localhost"},
		})
	})
}

func TestSitesMultisiteAliasesOnly(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		u := e.build(t, fixture{Alias: true,
			Sites: []fxSite{{ID: 1, Domain: "example.com", Name: "Example"}, {ID: 2, Domain: "other.example", Name: "Other"}},
			Aliases: []fxAlias{
				{SiteID: 1, Domain: "www.example.com"},
				{SiteID: 1, Domain: "example.com", Canonical: true},
				{SiteID: 1, Domain: "example.net"},
				{SiteID: 2, Domain: "other.example", Canonical: true},
			}})
		dir := writeFiles(t, map[string]string{})
		got := mustLoad(t, sites.Options{Project: dir, DB: u})
		compareSites(t, got, []sites.Site{
			{ID: 1, Name: "Example", Domain: "example.com", Slug: "example-com", Enabled: true,
				Aliases: []string{"example.com", "example.net", "www.example.com"}, LocalDomain: "example-com.localhost"},
			{ID: 2, Name: "Other", Domain: "other.example", Slug: "other-example", Enabled: true,
				Aliases: []string{"other.example"}, LocalDomain: "other-example.localhost"},
		})
		if got[0].CanonicalAlias != "example.com" {
			t.Errorf("canonical alias = %q, want example.com", got[0].CanonicalAlias)
		}
		if nc := strings.Join(got[0].NonCanonicalAliases(), ","); nc != "example.net,www.example.com" {
			t.Errorf("non-canonical aliases = %s", nc)
		}
	})
}

// richFixture is a django-multisite-plus project with every awkward row we
// know of. Site 20 (a 120-character django_site.domain) only fits SQLite:
// PostgreSQL and MySQL enforce varchar(100), so there the long name lives
// in real_domain (varchar(255)) and the slug. Site 13's slug "ZA" only
// fits PostgreSQL and SQLite: MySQL's default collation is
// case-insensitive, so its UNIQUE slug clashes with site 12's "za".
func richFixture(engineName string) fixture {
	plus := func(slug, real string, enabled bool) *fxPlus {
		return &fxPlus{Slug: slug, RealDomain: real, Enabled: enabled}
	}
	fx := fixture{Alias: true, Plus: true,
		Sites: []fxSite{
			{ID: 1, Domain: "example.com", Name: "example.com"},
			{ID: 2, Domain: "example.gh", Name: "Ghana", Plus: plus("gh", "www.example.gh", true)},
			{ID: 3, Domain: "example.de", Name: "Germany", Plus: plus("de", "www.example.de", false)},
			{ID: 4, Domain: "Example.ORG:8000", Name: "Port Site"},
			{ID: 5, Domain: "bücher.example", Name: "Books"},
			{ID: 6, Domain: "evil.example\n127.0.0.1 bank.example", Name: "Injected"},
			{ID: 7, Domain: "my site.example", Name: "Spaces"},
			{ID: 8, Domain: "www.example.org", Name: "WWW Org"},
			{ID: 9, Domain: "nine.example", Name: "Nine", Plus: plus("", "", true)},
			{ID: 10, Domain: "long.example", Name: "Long", Plus: plus(strings.Repeat("l", 70), long120, true)},
			{ID: 11, Domain: "shop.example", Name: "Shop", Plus: plus("Shop_1", "shop.example.com", true)},
			{ID: 12, Domain: "example.za", Name: "South Africa", Plus: plus("za", "www.example.za", true)},
			{ID: 13, Domain: "example2.za", Name: "Zulu", Plus: plus("ZA", "", true)},
			{ID: 14, Domain: "gh", Name: "Derived GH"},
		},
		Aliases: []fxAlias{
			{SiteID: 1, Domain: "example.com", Canonical: true},
			{SiteID: 2, Domain: "gh.example-stage.eu"},
			{SiteID: 2, Domain: "example.gh", Canonical: true},
			{SiteID: 3, Domain: "example.de", Canonical: true},
			{SiteID: 3, Domain: "de.example-stage.eu:8080"},
			{SiteID: 3, Domain: "*.example.de"},
		},
	}
	if engineName == "sqlite" {
		fx.Sites = append(fx.Sites, fxSite{ID: 20, Domain: long120, Name: "Long domain"})
	}
	if engineName == "mysql" {
		fx.Sites = slices.DeleteFunc(fx.Sites, func(s fxSite) bool { return s.ID == 13 })
	}
	return fx
}

// long120 is a valid 120-character hostname.
var long120 = strings.Repeat("x", 60) + "." + strings.Repeat("y", 51) + ".example"

func richWant(engineName string) []sites.Site {
	l70 := strings.Repeat("l", 70)
	want := []sites.Site{
		{ID: 1, Name: "example.com", Domain: "example.com", Slug: "example-com", Enabled: true,
			Aliases: []string{"example.com"}, LocalDomain: "example-com.localhost"},
		{ID: 2, Name: "Ghana", Domain: "example.gh", Slug: "gh", RealDomain: str("www.example.gh"), Enabled: true,
			Aliases: []string{"example.gh", "gh.example-stage.eu"}, LocalDomain: "gh.localhost", Forced: true},
		{ID: 3, Name: "Germany", Domain: "example.de", Slug: "de", RealDomain: str("www.example.de"), Enabled: false,
			Aliases: []string{"example.de", "*.example.de", "de.example-stage.eu:8080"}, LocalDomain: "de.localhost"},
		{ID: 4, Name: "Port Site", Domain: "Example.ORG:8000", Slug: "example-org", Enabled: true, LocalDomain: "example-org.localhost"},
		{ID: 5, Name: "Books", Domain: "bücher.example", Slug: "bcher-example", Enabled: true, LocalDomain: "bcher-example.localhost"},
		{ID: 6, Name: "Injected", Domain: "evil.example\n127.0.0.1 bank.example", Slug: "evil-example127-0-0-1bank-example", Enabled: true,
			LocalDomain: "evil-example127-0-0-1bank-example.localhost",
			Problems:    []string{`invalid domain: domain "evil.example\n127.0.0.1 bank.example" contains a control character`}},
		{ID: 7, Name: "Spaces", Domain: "my site.example", Slug: "mysite-example", Enabled: true, LocalDomain: "mysite-example.localhost",
			Problems: []string{`invalid domain: domain "my site.example" contains whitespace`}},
		{ID: 8, Name: "WWW Org", Domain: "www.example.org", Slug: "example-org-8", Enabled: true, LocalDomain: "example-org-8.localhost"},
		{ID: 9, Name: "Nine", Domain: "nine.example", Slug: "nine-example", RealDomain: str(""), Enabled: true, LocalDomain: "nine-example.localhost"},
		{ID: 10, Name: "Long", Domain: "long.example", Slug: l70, RealDomain: str(long120), Enabled: true, LocalDomain: l70 + ".localhost",
			Problems: []string{`invalid local domain: domain "` + l70 + `.localhost" is not a valid hostname: label "` + l70 + `" is longer than 63 characters`}},
		{ID: 11, Name: "Shop", Domain: "shop.example", Slug: "Shop_1", RealDomain: str("shop.example.com"), Enabled: true, LocalDomain: "Shop_1.localhost",
			Problems: []string{`invalid local domain: domain "Shop_1.localhost" is not a valid hostname: label "shop_1" contains '_'`}},
		{ID: 12, Name: "South Africa", Domain: "example.za", Slug: "za", RealDomain: str("www.example.za"), Enabled: true, LocalDomain: "za.localhost",
			Problems: []string{"duplicate local domain za.localhost (also site 13)"}},
		{ID: 13, Name: "Zulu", Domain: "example2.za", Slug: "ZA", RealDomain: str(""), Enabled: true, LocalDomain: "za.localhost",
			Problems: []string{"duplicate local domain za.localhost (also site 12)"}},
		{ID: 14, Name: "Derived GH", Domain: "gh", Slug: "gh-14", Enabled: true, LocalDomain: "gh-14.localhost"},
	}
	if engineName == "mysql" {
		want = slices.DeleteFunc(want, func(s sites.Site) bool { return s.ID == 13 })
		want[11].Problems = nil // site 12 alone has za.localhost
	}
	if engineName == "sqlite" {
		slug := strings.Repeat("x", 60) + "-" + strings.Repeat("y", 51) + "-example"
		want = append(want, sites.Site{ID: 20, Name: "Long domain", Domain: long120, Slug: slug, Enabled: true, LocalDomain: slug + ".localhost",
			Problems: []string{`invalid local domain: domain "` + slug + `.localhost" is not a valid hostname: label "` + slug + `" is longer than 63 characters`}})
	}
	return want
}

func TestSitesMultisitePlus(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		u := e.build(t, richFixture(e.name))
		dir := writeFiles(t, map[string]string{
			"manage.py":  "",
			".env-local": "# local settings\nDATABASE_URL=" + u + "\nSITE_ID=2\n",
		})
		got := mustLoad(t, sites.Options{Project: dir})
		compareSites(t, got, richWant(e.name))

		// The IDN domain is valid: the hosts file gets its punycode form.
		if h, err := sites.Hostname(got[4].Domain); err != nil || h != "xn--bcher-kva.example" {
			t.Errorf("Hostname(%q) = %q, %v; want xn--bcher-kva.example", got[4].Domain, h, err)
		}
		// A port and upper case are fine for the hosts file too.
		if h, err := sites.Hostname(got[3].Domain); err != nil || h != "example.org" {
			t.Errorf("Hostname(%q) = %q, %v; want example.org", got[3].Domain, h, err)
		}
		for _, s := range got {
			if s.Usable() != (len(s.Problems) == 0) {
				t.Errorf("site %d: Usable() = %v with problems %q", s.ID, s.Usable(), s.Problems)
			}
		}
	})
}

// TestSitesPostgresRejects120CharDomain documents why the 120-character
// django_site.domain case is SQLite-only: Django's varchar(100) holds on
// PostgreSQL.
func TestSitesPostgresRejects120CharDomain(t *testing.T) {
	e := pgEngine(t)
	_, db := e.create(t)
	if _, err := db.Exec(pgSiteDDL); err != nil {
		t.Fatal(err)
	}
	_, err := db.Exec(`INSERT INTO django_site (domain, name) VALUES ($1, 'x')`, long120)
	if err == nil || !strings.Contains(err.Error(), "value too long") {
		t.Fatalf("inserting a 120-character domain: err = %v, want value too long", err)
	}
}

func TestSitesForcedFromEnvFile(t *testing.T) {
	fx := fixture{Sites: []fxSite{{ID: 1, Domain: "a.example", Name: "A"}, {ID: 7, Domain: "b.example", Name: "B"}}}
	tests := []struct {
		name, env string
		forced    int64
	}{
		{"plain", "SITE_ID=7\n", 7},
		{"export and quotes", "export SITE_ID=\"7\"\n", 7},
		{"crlf", "SITE_ID=1\r\n", 1},
		{"none", "DEBUG=True\n", 0},
		{"not a number", "SITE_ID=abc\n", 0},
		{"unknown id", "SITE_ID=99\n", 0},
	}
	e := sqliteEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.build(t, fx)
			dir := writeFiles(t, map[string]string{".env": tt.env})
			got := mustLoad(t, sites.Options{Project: dir, DB: u})
			var forced int64
			n := 0
			for _, s := range got {
				if s.Forced {
					forced = s.ID
					n++
				}
			}
			if forced != tt.forced || n > 1 {
				t.Errorf("forced site = %d (%d forced), want %d", forced, n, tt.forced)
			}
		})
	}
}

func TestSitesDomainFormat(t *testing.T) {
	fx := fixture{Plus: true, Sites: []fxSite{
		{ID: 2, Domain: "example.gh", Name: "Ghana", Plus: &fxPlus{Slug: "gh", Enabled: true}},
		{ID: 5, Domain: "example.de", Name: "Germany"},
	}}
	tests := []struct {
		name          string
		flag, cfg, ev string
		want          []string // local domains of sites 2 and 5
	}{
		{name: "default", want: []string{"gh.localhost", "example-de.localhost"}},
		{name: "env file {}", ev: "{}.example", want: []string{"gh.example", "example-de.example"}},
		{name: "config wins over env file", cfg: "{slug}.test", ev: "{}.example", want: []string{"gh.test", "example-de.test"}},
		{name: "flag wins over config", flag: "{0}.{id}.local.test", cfg: "{slug}.test", want: []string{"gh.2.local.test", "example-de.5.local.test"}},
		{name: "id", flag: "site{id}.localhost", want: []string{"site2.localhost", "site5.localhost"}},
		{name: "literal braces make an invalid local domain", flag: "{{x}}{slug}.localhost",
			want: []string{"{x}gh.localhost", "{x}example-de.localhost"}},
	}
	e := sqliteEngine()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := e.build(t, fx)
			files := map[string]string{}
			if tt.cfg != "" {
				files["siteplex.toml"] = "domain_format = \"" + tt.cfg + "\"\n"
			}
			if tt.ev != "" {
				files[".env-local"] = "DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT='" + tt.ev + "'\n"
			}
			dir := writeFiles(t, files)
			got := mustLoad(t, sites.Options{Project: dir, DB: u, DomainFormat: tt.flag})
			for i, s := range got {
				if s.LocalDomain != tt.want[i] {
					t.Errorf("site %d: local_domain = %q, want %q", s.ID, s.LocalDomain, tt.want[i])
				}
				if strings.Contains(tt.want[i], "{") != (len(s.Problems) > 0) {
					t.Errorf("site %d: problems = %q", s.ID, s.Problems)
				}
			}
		})
	}
}

// TestPostgresCurrentSchema reads the tables from a non-public schema named
// by ?currentSchema= (dj-database-url's option).
func TestPostgresCurrentSchema(t *testing.T) {
	pg := testenv.StartPostgres(t)
	u := pg.CreateDB(t, "schemas")
	ddl := testenv.DjangoDDL["postgres"]
	pg.Exec(t, "schemas", `CREATE SCHEMA tenant1; SET search_path TO tenant1; `+ddl[0]+`
INSERT INTO tenant1.django_site (id, domain, name) VALUES (7, 'tenant.example', 'Tenant')`)
	dir := writeFiles(t, map[string]string{})
	got := mustLoad(t, sites.Options{Project: dir, DB: u + "&currentSchema=tenant1"})
	if len(got) != 1 || got[0].ID != 7 {
		t.Errorf("sites = %+v", got)
	}
	_, err := loadSites(t, sites.Options{Project: dir, DB: u})
	if err == nil || !strings.HasPrefix(err.Error(), "no django_site table in postgres") {
		t.Errorf("public schema: err = %v", err)
	}
}
