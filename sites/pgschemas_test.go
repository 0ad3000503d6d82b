package sites_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// TestRealPGSchemas migrates a django-pgschemas 0.12 project (Debian's
// python3-django-pgschemas) on PostgreSQL, creates tenants with domains
// through its own ORM, and lists them: with the hints introspection gives
// (its TENANTS setting, read here from the real settings) and without.
func TestRealPGSchemas(t *testing.T) {
	dir, env, u := testenv.PGSchemasProject(t, "pgschemasproj")
	testenv.Manage(t, dir, env, "shell", "-c", `
from shared_public.models import Tenant, Domain
t1 = Tenant.objects.create(schema_name="tenant1")
Domain.objects.create(tenant=t1, domain="tenant1.localhost", is_primary=True)
Domain.objects.create(tenant=t1, domain="tenant1.example", is_primary=False)
t2 = Tenant.objects.create(schema_name="tenant2")
Domain.objects.create(tenant=t2, domain="tenant2.localhost")
Domain.objects.create(tenant=t2, domain="everyone.localhost", folder="tenant2", is_primary=False)
t3 = Tenant.objects.create(schema_name="folders")
Domain.objects.create(tenant=t3, domain="everyone.localhost", folder="shop")
`)
	// What introspection reports: TENANTS in the settings' order.
	out := testenv.Manage(t, dir, env, "shell", "-c", `
import json
from django.conf import settings
d = settings.TENANTS["default"]
print(json.dumps({"tenant": d["TENANT_MODEL"], "domain": d["DOMAIN_MODEL"],
  "static": [[k, v.get("DOMAINS", []), v.get("FALLBACK_DOMAINS", [])] for k, v in settings.TENANTS.items() if k not in ("public", "default")]}))
`)
	var ts struct {
		Tenant, Domain string
		Static         [][]json.RawMessage
	}
	if err := json.Unmarshal([]byte(out), &ts); err != nil {
		t.Fatalf("settings JSON %q: %v", out, err)
	}
	ph := &sites.PGSchemasHints{TenantModel: ts.Tenant, DomainModel: ts.Domain}
	for _, s := range ts.Static {
		var st sites.StaticTenant
		json.Unmarshal(s[0], &st.Schema)
		json.Unmarshal(s[1], &st.Domains)
		json.Unmarshal(s[2], &st.FallbackDomains)
		ph.Static = append(ph.Static, st)
	}
	hints := &sites.Hints{Frameworks: []string{sites.FrameworkPGSchemas}, PGSchemas: ph}

	static := pgschemasStatic()
	if len(ph.Static) != len(static) {
		t.Fatalf("static tenants from the settings: %+v", ph.Static)
	}
	for i := range static {
		if ph.Static[i].Schema != static[i].Schema || !slices.Equal(ph.Static[i].Domains, static[i].Domains) ||
			!slices.Equal(ph.Static[i].FallbackDomains, static[i].FallbackDomains) {
			t.Errorf("static tenant %d from the settings: %+v, want %+v", i, ph.Static[i], static[i])
		}
	}
	got, info, err := loadDB(t, dir, parse(t, u), hints)
	if err != nil {
		t.Fatal(err)
	}
	comparePGSchemas(t, got, pgschemasWant())
	if info.String() != "django_pgschemas (public.shared_public_tenant, public.shared_public_domain, TENANTS (settings))" {
		t.Errorf("source %s", info)
	}

	// Without introspection: the tables are found; the static tenants,
	// which live only in settings, cannot be, and the note says so.
	got, info, err = loadDB(t, dir, parse(t, u), nil)
	if err != nil {
		t.Fatal(err)
	}
	comparePGSchemas(t, got, pgschemasWant()[2:])
	if info.Source != sites.SourcePGSchemas || len(info.Notes) != 1 || !strings.Contains(info.Notes[0], "static tenants live in settings") {
		t.Errorf("no hints: %+v", info)
	}
}
