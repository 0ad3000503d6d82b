package devproxy

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// djangoPython is the interpreter with Debian's python3-django; the
// python3 on PATH may not have Django.
const djangoPython = "/usr/bin/python3"

// djangoCommand runs the fixture with runserver on siteplex's port.
var djangoCommand = []string{djangoPython, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"}

var djangoCheck struct {
	once sync.Once
	err  error
	out  []byte
}

// copyDjangoFixture copies testdata/django (a Django 3.2 project with four
// sites in db.sqlite3; see testdata/django/README.md) to a fresh temp
// folder and returns its root. It skips loudly (testenv.Missing) when
// /usr/bin/python3 cannot import Django.
func copyDjangoFixture(t testing.TB) string {
	t.Helper()
	djangoCheck.once.Do(func() {
		djangoCheck.out, djangoCheck.err = exec.Command(djangoPython, "-c", "import django").CombinedOutput()
	})
	if djangoCheck.err != nil {
		testenv.Missing(t, "Django for %s (apt-get install -y python3-django): %v %s", djangoPython, djangoCheck.err, djangoCheck.out)
	}
	src, err := filepath.Abs(filepath.Join("..", "testdata", "django"))
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (d.Name() == "__pycache__" || d.Name() == ".siteplex") {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copying the Django fixture: %v", err)
	}
	return dst
}
