package main

import (
	"strings"
	"testing"
)

// TestSitesListsUnroutedAlias: a django-multisite alias "*" is never
// routed (it would route every name); `siteplex sites` says so in the
// site's problems, and the site is still listed as usable.
func TestSitesListsUnroutedAlias(t *testing.T) {
	dir := sitesProject(t,
		`INSERT INTO django_site (id, domain, name) VALUES (1, 'shop.example', 'Shop'), (2, 'other.example', 'Other')`,
		`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES
		  ('shop.example', 1, TRUE, TRUE), ('*.shop.example', 1, NULL, TRUE),
		  ('other.example', 2, TRUE, TRUE), ('*', 2, NULL, FALSE)`)
	want := "alias * is not routed: it would send every name to this site"
	out, stderr, code := runCLI(t, dir, nil, "sites")
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("sites (exit %d):\n%s%s", code, out, stderr)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "shop-example") && strings.Contains(line, "not routed") {
			t.Errorf("the routed wildcard *.shop.example is listed as not routed: %s", line)
		}
	}
	out, _, code = runCLI(t, dir, nil, "sites", "--json")
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("sites --json (exit %d):\n%s", code, out)
	}
}
