package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// TestSitesCLIWagtailWithContribSites: a Wagtail project that also
// installs django.contrib.sites (django-allauth needs it) lists Wagtail's
// sites with source "wagtail", never example.com; `use` on one says what
// SITE_ID means there.
func TestSitesCLIWagtailWithContribSites(t *testing.T) {
	dir := t.TempDir()
	testenv.DjangoSQLite(t, filepath.Join(dir, "db.sqlite3"),
		`INSERT INTO django_site (id, domain, name) VALUES (1, 'example.com', 'example.com')`,
		testenv.WagtailPageStub["sqlite"], testenv.WagtailSiteDDL["sqlite"],
		`INSERT INTO wagtailcore_page (id) VALUES (1)`,
		`INSERT INTO wagtailcore_site (id, hostname, port, site_name, root_page_id, is_default_site) VALUES
		  (1, 'localhost', 80, '', 1, 1), (2, 'blog.example', 8000, 'Blog', 1, 0)`)
	writeFile(t, filepath.Join(dir, "manage.py"), "")

	out, stderr, code := runCLI(t, dir, nil, "sites", "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("sites --json: exit %d: %s", code, stderr)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0]["domain"] != "localhost" || got[1]["domain"] != "blog.example:8000" || got[1]["name"] != "Blog" {
		t.Fatalf("sites:\n%s", out)
	}
	for _, s := range got {
		if s["source"] != "wagtail" {
			t.Errorf("site %v: source %v, want wagtail", s["id"], s["source"])
		}
	}
	if strings.Contains(out, "example.com") {
		t.Errorf("django_site's example.com is listed:\n%s", out)
	}

	out, stderr, code = runCLI(t, dir, nil, "use", "blog-example")
	if code != 0 || out != "SITE_ID=2: 2 blog-example (Blog, blog.example:8000), written to .env-local\n" {
		t.Fatalf("use: exit %d\n%s%s", code, out, stderr)
	}
	want := "siteplex: note: 2 blog-example (Blog, blog.example:8000) comes from wagtail, which picks the site from the Host header, not from SITE_ID: " +
		"SITE_ID=2 only tells siteplex which site localhost serves (settings that read SITE_ID from the environment would take it for django_site row 2)\n"
	if stderr != want {
		t.Errorf("use stderr:\n%s\nwant:\n%s", stderr, want)
	}
}
