package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/sites"
)

// TestDemoProject checks the demo's throw-away project as siteplex itself
// reads it: eight sites from the three Django tables, one with aliases,
// one disabled, one with a broken domain, and site 2 forced.
func TestDemoProject(t *testing.T) {
	ctx := context.Background()
	root, err := makeDemoProject(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p, err := sites.Load(sites.Options{Project: root, Cwd: root, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	db, err := p.ResolveDB(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sites.Open(ctx, db, false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if tb, err := st.Tables(ctx); err != nil || !tb.Site || !tb.Alias || !tb.Plus {
		t.Fatalf("tables %+v, %v", tb, err)
	}
	list, err := p.LoadSites(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 8 {
		t.Fatalf("%d sites, want 8", len(list))
	}
	var aliases, disabled, problems, forced []string
	for _, s := range list {
		if len(s.Aliases) > 1 {
			aliases = append(aliases, s.Slug)
		}
		if !s.Enabled {
			disabled = append(disabled, s.Slug)
		}
		if !s.Usable() {
			problems = append(problems, s.Slug)
		}
		if s.Forced {
			forced = append(forced, s.Slug)
		}
	}
	for name, got := range map[string][]string{"aliases": aliases, "disabled": disabled, "problems": problems, "forced": forced} {
		want := map[string]string{"aliases": "gh", "disabled": "archive", "problems": "evil", "forced": "gh"}[name]
		if strings.Join(got, ",") != want {
			t.Errorf("%s: %v, want [%s]", name, got, want)
		}
	}
	if s, _ := sites.Find(list, "4"); s == nil || s.Slug != "example-org" || s.LocalDomain != "example-org.localhost" {
		t.Errorf("site 4 (no multisite-plus row): %+v", s)
	}
	b, err := os.ReadFile(filepath.Join(root, "hosts"))
	if err != nil || !strings.Contains(string(b), "localhost") {
		t.Errorf("demo hosts file: %q, %v", b, err)
	}
}

// TestUIWithoutTerminal checks that the UI and the demo refuse to draw
// into a pipe, and say what to run instead.
func TestUIWithoutTerminal(t *testing.T) {
	for _, args := range [][]string{{"ui"}, {"demo"}, {}} {
		_, stderr, code := runCLI(t, "", nil, args...)
		if code != 1 || !strings.Contains(stderr, "needs a terminal") || !strings.Contains(stderr, "siteplex serve") {
			t.Errorf("siteplex %v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
