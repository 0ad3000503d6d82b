package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// pgschemasCLIProject migrates a copy of sites/testdata/pgschemasproj
// (django-pgschemas 0.12, static tenants www and blog in TENANTS) on the
// throw-away PostgreSQL, with its PG* variables in .env-local, and creates
// a tenant with a domain and one served only under a folder
// (tenants.localhost/t4). It returns the project root.
func pgschemasCLIProject(t *testing.T) string {
	t.Helper()
	dir, env, _ := testenv.PGSchemasProject(t, "pgscli"+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte(strings.Join(env, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.Manage(t, dir, env, "shell", "-c", `
from shared_public.models import Tenant, Domain
t1 = Tenant.objects.create(schema_name="tenant1")
Domain.objects.create(tenant=t1, domain="tenant1.localhost", is_primary=True)
t4 = Tenant.objects.create(schema_name="t4")
Domain.objects.create(tenant=t4, domain="tenants.localhost", folder="t4")
`)
	return dir
}

// TestPGSchemasCLI: on a django-pgschemas project, doctor names the
// tables siteplex reads (no stale "until siteplex reads" advice), `hosts
// apply --names all` leaves the folder-only tenant out with a note and
// exits 0, and `use -1` selects a static tenant without writing a negative
// SITE_ID.
func TestPGSchemasCLI(t *testing.T) {
	dir := pgschemasCLIProject(t)
	env := djangoEnv(t)
	base := []string{"--project", dir, "--python", testenv.Python}

	t.Run("doctor frameworks", func(t *testing.T) {
		denv := map[string]string{"DOCKER_HOST": deadDockerHost(t), "XDG_STATE_HOME": env["XDG_STATE_HOME"]}
		r := runSiteplexCLI(t, denv, append(base, "doctor", "--json")...)
		rep, status := parseDoctorJSON(t, r.out)
		if status["frameworks"] != "ok" || status["database"] == "fail" {
			t.Errorf("frameworks %s, database %s\n%s", status["frameworks"], status["database"], r.out)
		}
		for _, c := range rep.Checks {
			if c.Name == "frameworks" && !strings.Contains(c.Detail, "siteplex reads the sites from django_pgschemas (public.shared_public_tenant, public.shared_public_domain, TENANTS (settings))") {
				t.Errorf("frameworks detail %q", c.Detail)
			}
		}
		if strings.Contains(r.out, "until siteplex reads") || strings.Contains(r.out, "does not route by") {
			t.Errorf("stale advice:\n%s", r.out)
		}
	})

	t.Run("hosts apply --names all", func(t *testing.T) {
		hf := filepath.Join(t.TempDir(), "hosts")
		if err := os.WriteFile(hf, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := runCLI(t, dir, env, append(base, "--hosts-file", hf, "hosts", "apply", "--names", "all")...)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		if !strings.Contains(errOut, "left out, no host name to write: served only under a folder (tenants.localhost/t4)") {
			t.Errorf("no note for the folder-only tenant:\n%s", errOut)
		}
		b, _ := os.ReadFile(hf)
		if !strings.Contains(string(b), " tenant1.localhost\n") || !strings.Contains(string(b), " blog.localhost\n") || strings.Contains(string(b), "tenants.localhost") {
			t.Errorf("hosts file:\n%s", b)
		}
	})

	t.Run("use a static tenant", func(t *testing.T) {
		envFile := filepath.Join(dir, ".env-local")
		before, _ := os.ReadFile(envFile)
		for _, args := range [][]string{{"use", "-1"}, {"use", "--", "-1"}, {"use", "-1", "--json"}} {
			out, errOut, code := runCLI(t, dir, env, append(base, args...)...)
			if code != 0 || !strings.Contains(errOut, "static tenant") || !strings.Contains(errOut, "writes no SITE_ID") {
				t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
			}
			if after, _ := os.ReadFile(envFile); string(after) != string(before) {
				t.Errorf("%v changed .env-local:\n%s", args, after)
			}
		}
		// A dynamic tenant's id is still written, with the note on what
		// SITE_ID means for a framework that routes by Host.
		out, errOut, code := runCLI(t, dir, env, append(base, "use", "tenant1-localhost")...)
		if code != 0 || !strings.Contains(out, "SITE_ID=1: 1 tenant1-localhost") || !strings.Contains(errOut, "picks the site from the Host header") {
			t.Errorf("use tenant1: exit %d\n%s%s", code, out, errOut)
		}
		if b, _ := os.ReadFile(envFile); !strings.Contains(string(b), "SITE_ID=1\n") {
			t.Errorf(".env-local:\n%s", b)
		}
	})
}
