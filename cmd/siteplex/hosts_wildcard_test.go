package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostsWildcardAliasesLeftOut: django-multisite's wildcard aliases
// never reach the hosts file; `hosts apply --names all` says which it left
// out and why, and exits 0.
func TestHostsWildcardAliasesLeftOut(t *testing.T) {
	dir := sitesProject(t,
		`INSERT INTO django_site (id, domain, name) VALUES (1, 'shop.example', 'Shop'), (2, 'other.example', 'Other')`,
		`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES
		  ('shop.example', 1, TRUE, TRUE), ('*.shop.example', 1, NULL, TRUE), ('shop.example.net', 1, NULL, TRUE),
		  ('other.example', 2, TRUE, TRUE), ('*', 2, NULL, FALSE)`)
	state := t.TempDir()
	t.Setenv("XDG_STATE_HOME", state) // the pristine copy goes here, not to the real home
	hf := filepath.Join(state, "hosts")
	if err := os.WriteFile(hf, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, dir, nil, "hosts", "apply", "--names", "all", "--hosts-file", hf)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "siteplex: site 1 (shop-example): left out wildcard alias *.shop.example: a hosts file cannot hold wildcards\n" +
		"siteplex: site 2 (other-example): left out wildcard alias *: a hosts file cannot hold wildcards\n"
	if !strings.HasPrefix(stderr, want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
	data, _ := os.ReadFile(hf)
	for _, name := range []string{"shop.example", "shop.example.net", "other.example", "shop-example.localhost"} {
		if !strings.Contains(string(data), " "+name) {
			t.Errorf("hosts file lacks %s:\n%s", name, data)
		}
	}
	if strings.Contains(string(data), "*") {
		t.Errorf("a wildcard reached the hosts file:\n%s", data)
	}
	// The sites still list the wildcard aliases: they are not problems.
	out, _, code := runCLI(t, dir, nil, "sites", "--json")
	if code != 0 || !strings.Contains(out, `"*.shop.example"`) || strings.Contains(out, "wildcard") {
		t.Errorf("sites --json (exit %d):\n%s", code, out)
	}
}
