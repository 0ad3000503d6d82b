package testenv

import (
	"path/filepath"
	"runtime"
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
