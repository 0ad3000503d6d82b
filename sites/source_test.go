package sites_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// execAll runs each statement (splitting multi-statement DDL on ";\n").
func execAll(t testing.TB, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		for _, one := range strings.Split(q, ";\n") {
			if strings.TrimSpace(one) == "" {
				continue
			}
			if _, err := db.Exec(one); err != nil {
				t.Fatalf("%v\n%s", err, one)
			}
		}
	}
}

// loadWith reads the sites of the database at u with hints, the way
// `siteplex sites` does, and says where they came from.
func loadWith(t testing.TB, u string, h *sites.Hints, files map[string]string) ([]sites.Site, sites.SourceInfo, error) {
	t.Helper()
	return loadDB(t, writeFiles(t, files), parse(t, u), h)
}

// loadDB reads the sites of d for the project in dir with hints h.
func loadDB(t testing.TB, dir string, d sites.DB, h *sites.Hints) ([]sites.Site, sites.SourceInfo, error) {
	t.Helper()
	ctx := context.Background()
	p, err := sites.Load(sites.Options{Project: dir, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	p.Hints = h
	st, err := sites.Open(ctx, d, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	return p.LoadSitesSource(ctx, st)
}

// wagtailFixture is a Wagtail project that also installs contrib.sites
// (as django-allauth requires): django_site holds only example.com.
func wagtailFixture(t *testing.T, e engine) string {
	u, db := e.create(t)
	ph := e.ph
	execAll(t, db, e.ddl[0], testenv.WagtailPageStub[e.name], testenv.WagtailSiteDDL[e.name],
		`INSERT INTO django_site (id, domain, name) VALUES (1, 'example.com', 'example.com')`,
		`INSERT INTO wagtailcore_page (id) VALUES (1)`)
	rows := []struct {
		id       int64
		hostname string
		port     int
		name     string
		def      bool
	}{
		{1, "localhost", 80, "", true}, // `wagtail start`'s row
		{2, "a.example", 80, "Site A", false},
		{3, "b.example", 8000, "Site B", false},
		{4, "x.example", 80, "X on 80", false},
		{5, "x.example", 8000, "X on 8000", false},
		{6, "secure.example", 443, "Secure", false},
		{7, "Mixed.Example", 80, "Mixed", false},
	}
	for _, r := range rows {
		q := fmt.Sprintf(`INSERT INTO wagtailcore_site (id, hostname, port, site_name, root_page_id, is_default_site) VALUES (%s, %s, %s, %s, 1, %s)`,
			ph(1), ph(2), ph(3), ph(4), ph(5))
		if _, err := db.Exec(q, r.id, r.hostname, r.port, r.name, r.def); err != nil {
			t.Fatal(err)
		}
	}
	return u
}

func wagtailWant(engine string) []sites.Site {
	w := func(port int, def bool) sites.Origin {
		return sites.Origin{Source: sites.SourceWagtail, Port: port, Default: def}
	}
	want := []sites.Site{
		{ID: 1, Name: "localhost", Domain: "localhost", Slug: "localhost", Enabled: true, LocalDomain: "localhost.localhost", Origin: w(80, true), Problems: machineProblem("localhost")},
		{ID: 2, Name: "Site A", Domain: "a.example", Slug: "a-example", Enabled: true, LocalDomain: "a-example.localhost", Origin: w(80, false)},
		{ID: 3, Name: "Site B", Domain: "b.example:8000", Slug: "b-example", Enabled: true, LocalDomain: "b-example.localhost", Origin: w(8000, false)},
		{ID: 4, Name: "X on 80", Domain: "x.example", Slug: "x-example", Enabled: true, LocalDomain: "x-example.localhost", Origin: w(80, false)},
		{ID: 5, Name: "X on 8000", Domain: "x.example:8000", Slug: "x-example-5", Enabled: true, LocalDomain: "x-example-5.localhost", Origin: w(8000, false)},
		{ID: 6, Name: "Secure", Domain: "secure.example", Slug: "secure-example", Enabled: true, LocalDomain: "secure-example.localhost", Origin: w(443, false)},
		{ID: 7, Name: "Mixed", Domain: "Mixed.Example", Slug: "mixed-example", Enabled: true, LocalDomain: "mixed-example.localhost", Origin: w(80, false)},
	}
	if engine != "mysql" {
		// MySQL's collation ignores case; PostgreSQL and SQLite do not.
		want[6].Problems = []string{`hostname "Mixed.Example" has capital letters: Wagtail compares the lower-cased Host exactly, so no request reaches this site by name; lower-case it in Wagtail's Sites settings`}
	}
	return want
}

// TestWagtailSites: a Wagtail project with contrib.sites lists Wagtail's
// sites, not example.com, whether introspection names the frameworks or
// the tables alone decide.
func TestWagtailSites(t *testing.T) {
	forEngine(t, func(t *testing.T, e engine) {
		u := wagtailFixture(t, e)
		for _, h := range []*sites.Hints{nil, {Frameworks: []string{sites.FrameworkSites, sites.FrameworkWagtail}}} {
			got, info, err := loadWith(t, u, h, nil)
			if err != nil {
				t.Fatal(err)
			}
			compareSites(t, got, wagtailWant(e.name))
			for i, s := range got {
				w := wagtailWant(e.name)[i]
				if s.Port != w.Port || s.Default != w.Default {
					t.Errorf("site %d: port %d default %v, want %d %v", s.ID, s.Port, s.Default, w.Port, w.Default)
				}
			}
			if info.Source != sites.SourceWagtail || info.String() != "wagtail (wagtailcore_site)" || info.Introspected != (h != nil) {
				t.Errorf("source %+v", info)
			}
			if len(info.Notes) != 1 || !strings.Contains(info.Notes[0], "django_site exists too") {
				t.Errorf("notes %q: want one saying django_site is not listed", info.Notes)
			}
		}
		// Introspection that says contrib.sites only: django_site, and a
		// note about the Wagtail table.
		got, info, err := loadWith(t, u, &sites.Hints{Frameworks: []string{sites.FrameworkSites}}, nil)
		if err != nil || len(got) != 1 || got[0].Domain != "example.com" || info.Source != sites.SourceDjangoSite {
			t.Fatalf("contrib.sites only: %+v %+v %v", got, info, err)
		}
		if len(info.Notes) != 1 || !strings.Contains(info.Notes[0], "wagtailcore_site exists too") {
			t.Errorf("notes %q", info.Notes)
		}
	})
}

// TestWagtailOldSiteNameNull: before Wagtail's migration 0046 site_name
// could be NULL; such a site is named by its domain.
func TestWagtailOldSiteNameNull(t *testing.T) {
	e := sqliteEngine()
	u, db := e.create(t)
	execAll(t, db, testenv.WagtailPageStub["sqlite"],
		`CREATE TABLE "wagtailcore_site" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "hostname" varchar(255) NOT NULL,
  "port" integer NOT NULL, "root_page_id" integer NOT NULL, "is_default_site" bool NOT NULL, "site_name" varchar(255) NULL)`,
		`INSERT INTO wagtailcore_page (id) VALUES (1)`,
		`INSERT INTO wagtailcore_site VALUES (1, 'old.example', 8080, 1, 1, NULL)`)
	got, _, err := loadWith(t, u, nil, nil)
	if err != nil || len(got) != 1 || got[0].Name != "old.example:8080" || got[0].Domain != "old.example:8080" {
		t.Fatalf("sites %+v, %v", got, err)
	}
}

func TestSourceErrors(t *testing.T) {
	sqlite := sqliteEngine()
	plain := sqlite.build(t, fixture{Sites: []fxSite{{ID: 1, Domain: "example.com", Name: "example.com"}}})
	path := strings.TrimPrefix(plain, "sqlite:///")
	tests := []struct {
		name string
		h    *sites.Hints
		want string
	}{
		{"Wagtail installed, table missing", &sites.Hints{Frameworks: []string{sites.FrameworkSites, sites.FrameworkWagtail}},
			"no wagtailcore_site table in sqlite " + path + ": Wagtail is installed: run `manage.py migrate`"},
		{"no site framework", &sites.Hints{Frameworks: []string{}},
			"no site table in sqlite " + path + ": the project installs no site framework (django.contrib.sites, Wagtail, django-tenants, django-pgschemas); declare its sites in siteplex.toml"},
		{"django-tenants on SQLite", &sites.Hints{Frameworks: []string{sites.FrameworkTenants}, TenantModel: "customers.Client", TenantDomainModel: "customers.Domain"},
			"django-tenants is installed, but sqlite " + path + " is not PostgreSQL: django-tenants works on PostgreSQL only; point siteplex at the project's database with --db postgres://…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := loadWith(t, plain, tt.h, nil)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant %s", err, tt.want)
			}
		})
	}
	// A missing table is a NoSiteTableError, so that a project declaring
	// its sites in siteplex.toml can go on without it.
	_, _, err := loadWith(t, plain, tests[0].h, nil)
	var nt *sites.NoSiteTableError
	if !errors.As(err, &nt) {
		t.Errorf("%T is not a *NoSiteTableError", err)
	}
}

// tenantsDB builds the django-tenants example of its docs in schema (and
// contrib.sites' django_site in public, as SHARED_APPS often have it).
func tenantsDB(t *testing.T, schema, tenantTable, domainTable string) string {
	pg := testenv.StartPostgres(t)
	name := dbName(t)
	u := pg.CreateDB(t, name)
	ddl := strings.NewReplacer("customers_client", tenantTable, "customers_domain", domainTable).Replace(testenv.TenantsDDL)
	pg.Exec(t, name, fmt.Sprintf(`CREATE SCHEMA IF NOT EXISTS %[1]s; SET search_path TO %[1]s; %[2]s;
SET search_path TO public; %[3]s;
INSERT INTO public.django_site (id, domain, name) VALUES (1, 'example.com', 'example.com');
SET search_path TO %[1]s;
INSERT INTO %[4]s (id, schema_name, name, paid_until, on_trial, created_on) VALUES
  (1, 'public', 'Public', '2030-01-01', false, '2024-01-01'),
  (2, 'acme', 'ACME', '2030-01-01', false, '2024-01-01'),
  (3, 'globex', 'Globex', '2030-01-01', true, '2024-01-01'),
  (4, 'empty', 'No domain', '2030-01-01', true, '2024-01-01'),
  (5, 'www_shop', 'WWW shop', '2030-01-01', true, '2024-01-01'),
  (6, 'caps', 'Caps', '2030-01-01', true, '2024-01-01');
INSERT INTO %[5]s (domain, is_primary, tenant_id) VALUES
  ('localhost', true, 1),
  ('acme.localhost', false, 2), ('acme.example', true, 2), ('www2.acme.example', false, 2),
  ('globex.example', false, 3), ('globex.test', false, 3),
  ('www.shop.example', true, 5), ('shop.example.net', false, 5),
  ('Caps.Example', true, 6)`, schema, ddl, testenv.DjangoDDL["postgres"][0], tenantTable, domainTable))
	return u
}

func tenantsWant() []sites.Site {
	o := func(schema string) sites.Origin { return sites.Origin{Source: sites.SourceTenants, Schema: schema} }
	return []sites.Site{
		{ID: 1, Name: "public", Domain: "localhost", Slug: "localhost", Enabled: true, Aliases: []string{"localhost"}, Problems: machineProblem("localhost"),
			LocalDomain: "localhost.localhost", Origin: o("public")},
		{ID: 2, Name: "acme", Domain: "acme.example", Slug: "acme-example", Enabled: true,
			Aliases: []string{"acme.example", "acme.localhost", "www2.acme.example"}, LocalDomain: "acme-example.localhost", Origin: o("acme")},
		{ID: 3, Name: "globex", Domain: "globex.example", Slug: "globex-example", Enabled: true,
			Aliases: []string{"globex.example", "globex.test"}, LocalDomain: "globex-example.localhost", Origin: o("globex")},
		{ID: 4, Name: "empty", Domain: "", Slug: "", Enabled: true, LocalDomain: "", Origin: o("empty"),
			Problems: []string{`tenant "empty" has no domain: add one to reach it (django-tenants routes by domain)`, "invalid domain: empty domain", "empty slug"}},
		{ID: 5, Name: "www_shop", Domain: "www.shop.example", Slug: "shop-example", Enabled: true,
			Aliases: []string{"www.shop.example", "shop.example.net"}, LocalDomain: "shop-example.localhost", Origin: o("www_shop"),
			Problems: []string{`primary domain "www.shop.example" starts with www.: django-tenants strips www. from the Host, so it never matches; store it without www.`}},
		{ID: 6, Name: "caps", Domain: "Caps.Example", Slug: "caps-example", Enabled: true,
			Aliases: []string{"Caps.Example"}, LocalDomain: "caps-example.localhost", Origin: o("caps"),
			Problems: []string{`primary domain "Caps.Example" has capital letters: django-tenants compares the Host exactly, so it never matches; lower-case it`}},
	}
}

// TestTenantsSites reads django-tenants' tables (PostgreSQL only: the
// backend supports nothing else): one site per tenant, the primary domain
// canonical, the rest aliases, schema-qualified so the search_path never
// matters.
func TestTenantsSites(t *testing.T) {
	hints := &sites.Hints{Frameworks: []string{sites.FrameworkSites, sites.FrameworkTenants},
		TenantModel: "customers.Client", TenantDomainModel: "customers.Domain"}
	t.Run("public schema, hints", func(t *testing.T) {
		u := tenantsDB(t, "public", "customers_client", "customers_domain")
		got, info, err := loadWith(t, u, hints, nil)
		if err != nil {
			t.Fatal(err)
		}
		compareSites(t, got, tenantsWant())
		if info.String() != "django_tenants (public.customers_client, public.customers_domain)" || !info.Introspected ||
			len(info.Notes) != 1 || !strings.Contains(info.Notes[0], "django_site exists too") {
			t.Errorf("source %+v", info)
		}
		for i, s := range got {
			if w := tenantsWant()[i]; s.CanonicalAlias != w.Domain {
				t.Errorf("tenant %d: canonical %q, want %q", s.ID, s.CanonicalAlias, w.Domain)
			}
		}
	})
	t.Run("public schema, no hints", func(t *testing.T) {
		u := tenantsDB(t, "public", "customers_client", "customers_domain")
		got, info, err := loadWith(t, u, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		compareSites(t, got, tenantsWant())
		if info.Source != sites.SourceTenants || info.Introspected {
			t.Errorf("source %+v", info)
		}
	})
	t.Run("PUBLIC_SCHEMA_NAME and db_table from the hints", func(t *testing.T) {
		u := tenantsDB(t, "shared", "acct_tenant", "acct_hostname")
		h := *hints
		h.PublicSchema = "shared"
		h.Tables = map[string]string{"customers.Client": "acct_tenant", "customers.domain": "acct_hostname"}
		got, info, err := loadWith(t, u, &h, nil)
		if err != nil {
			t.Fatal(err)
		}
		compareSites(t, got, tenantsWant())
		if info.String() != "django_tenants (shared.acct_tenant, shared.acct_hostname)" {
			t.Errorf("source %s", info)
		}
		// Without the hints the tables of another schema are not found:
		// django_site of public is listed, and says so.
		got, info, err = loadWith(t, u, nil, nil)
		if err != nil || info.Source != sites.SourceDjangoSite || len(got) != 1 {
			t.Errorf("no hints: %+v %+v %v", got, info, err)
		}
	})
	t.Run("{schema} in the domain format", func(t *testing.T) {
		u := tenantsDB(t, "public", "customers_client", "customers_domain")
		got, _, err := loadWith(t, u, hints, map[string]string{"siteplex.toml": `domain_format = "{schema}.tenants.localhost"`})
		if err != nil {
			t.Fatal(err)
		}
		var locals []string
		for _, s := range got {
			locals = append(locals, s.LocalDomain)
		}
		want := []string{"public.tenants.localhost", "acme.tenants.localhost", "globex.tenants.localhost", "", "www_shop.tenants.localhost", "caps.tenants.localhost"}
		if !slices.Equal(locals, want) {
			t.Errorf("local domains %q\nwant %q", locals, want)
		}
		if p := strings.Join(got[4].Problems, "; "); !strings.Contains(p, `label "www_shop" contains '_'`) {
			t.Errorf("www_shop problems: %s", p)
		}
	})
	t.Run("tables missing", func(t *testing.T) {
		u := pgEngine(t).build(t, fixture{Sites: []fxSite{{ID: 1, Domain: "example.com", Name: "example.com"}}})
		_, _, err := loadWith(t, u, hints, nil)
		want := fmt.Sprintf("no public.customers_client table in %s: django-tenants is installed and its settings name it: run `manage.py migrate_schemas --shared`", parse(t, u).Display())
		if err == nil || err.Error() != want {
			t.Errorf("err = %v\nwant %s", err, want)
		}
	})
}

// pgschemasStatic are the static tenants of sites/testdata/pgschemasproj's
// TENANTS, in order.
func pgschemasStatic() []sites.StaticTenant {
	return []sites.StaticTenant{
		{Schema: "www", Domains: []string{"localhost"}, FallbackDomains: []string{"everyone.localhost"}},
		{Schema: "blog", Domains: []string{"blog.localhost"}},
	}
}

// pgschemasWant are the sites of pgschemasStatic and of three dynamic
// tenants: tenant1 (two domains), tenant2 (a domain and a folder),
// folders (a folder only).
func pgschemasWant() []sites.Site {
	o := func(schema string, folders ...string) sites.Origin {
		return sites.Origin{Source: sites.SourcePGSchemas, Schema: schema, Folders: folders}
	}
	return []sites.Site{
		{ID: -2, Name: "blog", Domain: "blog.localhost", Slug: "blog-localhost", Enabled: true, Aliases: []string{"blog.localhost"},
			LocalDomain: "blog-localhost.localhost", Origin: o("blog")},
		{ID: -1, Name: "www", Domain: "localhost", Slug: "localhost", Enabled: true, Aliases: []string{"localhost", "everyone.localhost"}, Problems: machineProblem("localhost"),
			LocalDomain: "localhost.localhost", Origin: o("www")},
		{ID: 1, Name: "tenant1", Domain: "tenant1.localhost", Slug: "tenant1-localhost", Enabled: true,
			Aliases: []string{"tenant1.localhost", "tenant1.example"}, LocalDomain: "tenant1-localhost.localhost", Origin: o("tenant1")},
		{ID: 2, Name: "tenant2", Domain: "tenant2.localhost", Slug: "tenant2-localhost", Enabled: true,
			Aliases: []string{"tenant2.localhost"}, LocalDomain: "tenant2-localhost.localhost", Origin: o("tenant2", "everyone.localhost/tenant2"),
			// Routed on its domain; the folder route is listed, not routed.
			Problems: []string{"folder route everyone.localhost/tenant2 not routed: siteplex routes by host name, so open it through the site of that domain"}},
		{ID: 3, Name: "folders", Domain: "everyone.localhost", Slug: "everyone-localhost", Enabled: true,
			LocalDomain: "everyone-localhost.localhost", Origin: o("folders", "everyone.localhost/shop"),
			Problems: []string{"served only under a folder (everyone.localhost/shop): siteplex routes by host name, so open it through the site of that domain"}},
	}
}

// comparePGSchemas is compareSites, folders included.
func comparePGSchemas(t *testing.T, got, want []sites.Site) {
	t.Helper()
	compareSites(t, got, want)
	for i := range min(len(got), len(want)) {
		if !slices.Equal(got[i].Folders, want[i].Folders) {
			t.Errorf("site %d folders %q, want %q", got[i].ID, got[i].Folders, want[i].Folders)
		}
	}
}

// TestPGSchemasSites reads django-pgschemas' tables, built with their
// DDL, and static tenants (PostgreSQL only, as django-pgschemas).
func TestPGSchemasSites(t *testing.T) {
	pg := testenv.StartPostgres(t)
	name := dbName(t)
	u := pg.CreateDB(t, name)
	pg.Exec(t, name, testenv.PGSchemasDDL+`;
INSERT INTO shared_public_tenant (id, schema_name) VALUES (1, 'tenant1'), (2, 'tenant2'), (3, 'folders'), (4, 'public');
INSERT INTO shared_public_domain (domain, folder, is_primary, redirect_to_primary, tenant_id) VALUES
  ('tenant1.localhost', '', true, false, 1), ('tenant1.example', '', false, true, 1),
  ('tenant2.localhost', '', true, false, 2), ('everyone.localhost', 'tenant2', false, false, 2),
  ('everyone.localhost', 'shop', true, false, 3),
  ('public.localhost', '', true, false, 4)`)
	hints := &sites.Hints{Frameworks: []string{sites.FrameworkPGSchemas},
		Tables:    map[string]string{"shared_public.Tenant": "shared_public_tenant", "shared_public.Domain": "shared_public_domain"},
		PGSchemas: &sites.PGSchemasHints{TenantModel: "shared_public.Tenant", DomainModel: "shared_public.Domain", Static: pgschemasStatic()}}
	want := append(pgschemasWant(), sites.Site{ID: 4, Name: "public", Domain: "public.localhost", Slug: "public-localhost", Enabled: true,
		Aliases: []string{"public.localhost"}, LocalDomain: "public-localhost.localhost",
		Origin:   sites.Origin{Source: sites.SourcePGSchemas, Schema: "public"},
		Problems: []string{"the public schema cannot be routed to (django-pgschemas)"}})
	got, info, err := loadWith(t, u, hints, nil)
	if err != nil {
		t.Fatal(err)
	}
	comparePGSchemas(t, got, want)
	if info.String() != "django_pgschemas (public.shared_public_tenant, public.shared_public_domain, TENANTS (settings))" {
		t.Errorf("source %s", info)
	}

	// Without settings: the tables are found, static tenants cannot be,
	// and the note says so.
	got, info, err = loadWith(t, u, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	comparePGSchemas(t, got, want[2:])
	if info.Source != sites.SourcePGSchemas || len(info.Notes) != 1 || !strings.Contains(info.Notes[0], "static tenants live in settings") {
		t.Errorf("no hints: %+v", info)
	}
}

func TestFinalizeSchemaFormatOnPlainSites(t *testing.T) {
	df, err := sites.ParseDomainFormat("{schema}.localhost")
	if err != nil {
		t.Fatal(err)
	}
	list := []sites.Site{{ID: 1, Domain: "a.example"}, {ID: 2, Domain: "b.example", Origin: sites.Origin{Schema: "b"}}}
	sites.Finalize(list, df, 0)
	if want := `domain format "{schema}.localhost" uses {schema}, and only django-tenants and django-pgschemas sites have a schema`; !slices.Equal(list[0].Problems, []string{want}) {
		t.Errorf("problems %q", list[0].Problems)
	}
	if list[1].LocalDomain != "b.localhost" || len(list[1].Problems) != 0 {
		t.Errorf("tenant site: %q %q", list[1].LocalDomain, list[1].Problems)
	}
}

// machineProblem is the hosts-only problem of a site whose domain is this
// machine (localhost or an IP address): listed, routed on its local name,
// never written to a hosts file.
func machineProblem(domain string) []string {
	return []string{"domain " + domain + " is this machine (localhost or an IP address): never written to the hosts file; the site is reached on its local name"}
}
