package supervisor

import (
	"path/filepath"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// djangoCommand runs the fixture with runserver on siteplex's port.
var djangoCommand = []string{testenv.Python, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"}

// copyDjangoFixture copies testdata/django (a Django 3.2 project with four
// sites in db.sqlite3; see testdata/django/README.md) to a fresh temp
// folder and returns its root. It skips loudly (testenv.Missing) when
// /usr/bin/python3 cannot import Django.
func copyDjangoFixture(t testing.TB) string {
	t.Helper()
	testenv.NeedPython(t, "django")
	src, err := filepath.Abs(filepath.Join("..", "..", "testdata", "django"))
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	testenv.CopyProject(t, src, dst)
	return dst
}
