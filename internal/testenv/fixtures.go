package testenv

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Testdata is the repository's testdata folder.
func Testdata(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("testenv: cannot find the repository's testdata folder")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// DjangoFixture copies the Django fixture project testdata/<name> into a
// temp folder with the shared app testdata/siteapp (its /whoami/ view and
// the sites migration) beside it, and migrates it with the real Django when
// migrate is true. It skips loudly without Django. It leaves out
// __pycache__, .siteplex and (except for testdata/django, which ships its
// db.sqlite3) databases.
func DjangoFixture(t testing.TB, name string, migrate bool) string {
	t.Helper()
	NeedPython(t, "django")
	dir := t.TempDir()
	td := Testdata(t)
	if name == "django" {
		// The env-driven fixture ships its database (testdata/django/README.md).
		CopyProject(t, filepath.Join(td, name), dir)
	} else {
		CopyProject(t, filepath.Join(td, name), dir, ".sqlite3", ".db")
		CopyProject(t, filepath.Join(td, "siteapp"), filepath.Join(dir, "siteapp"))
	}
	if migrate {
		Migrate(t, dir)
	}
	return dir
}

// DjangoFixtureSites copies testdata/django (four sites, its database
// shipped) or testdata/django-admin (migrated here: one site) and fills its
// database with sites up to n (FillDjangoSites): the size of the preload
// tests and benchmarks. Both read SITE_ID from the environment. It skips
// loudly without Django.
func DjangoFixtureSites(t testing.TB, name string, n int) string {
	t.Helper()
	NeedPython(t, "django")
	dir := t.TempDir()
	src := filepath.Join(Testdata(t), name)
	if name == "django" {
		CopyProject(t, src, dir)
	} else {
		CopyProject(t, src, dir, ".sqlite3")
		Migrate(t, dir)
	}
	FillDjangoSites(t, dir, n)
	return dir
}

// FillDjangoSites adds sites to dir/db.sqlite3 until django_site holds n:
// ids after the largest, domains site<id>.example.com, names "Site <id>".
func FillDjangoSites(t testing.TB, dir string, n int) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "db.sqlite3"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var have, last int
	if err := db.QueryRow("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM django_site").Scan(&have, &last); err != nil {
		t.Fatalf("reading the fixture's sites: %v", err)
	}
	for id := last + 1; have < n; id++ {
		if _, err := db.Exec("INSERT INTO django_site (id, domain, name) VALUES (?, ?, ?)",
			id, fmt.Sprintf("site%d.example.com", id), fmt.Sprintf("Site %d", id)); err != nil {
			t.Fatalf("adding site %d to the fixture: %v", id, err)
		}
		have++
	}
}

// AppendFile appends text to dir/rel (a fixture's settings, its URLconf).
func AppendFile(t testing.TB, dir, rel, text string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, rel), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// ManagePyAssigns makes a fixture's manage.py assign DJANGO_SETTINGS_MODULE
// (os.environ[...] = module) instead of calling setdefault, as some
// projects do: the variable siteplex sets is then overridden.
func ManagePyAssigns(t testing.TB, dir, module string) {
	t.Helper()
	p := filepath.Join(dir, "manage.py")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf("os.environ.setdefault(%q, %q)", "DJANGO_SETTINGS_MODULE", module)
	src := strings.Replace(string(b), old, fmt.Sprintf("os.environ[%q] = %q", "DJANGO_SETTINGS_MODULE", module), 1)
	if src == string(b) {
		t.Fatalf("%s has no %s to change", p, old)
	}
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}
