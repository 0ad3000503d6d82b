package testenv

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Python is Debian's interpreter, the one python3-django and
// python3-psycopg2 install into; the python3 first on PATH may lack them.
const Python = "/usr/bin/python3"

// imports caches NeedPython's checks per module: each one starts Python.
var imports sync.Map // module → error (nil: importable)

// NeedPython skips the test loudly (Missing) unless Python can import
// every module.
func NeedPython(t testing.TB, modules ...string) {
	t.Helper()
	for _, m := range modules {
		v, ok := imports.Load(m)
		if !ok {
			var err error
			if out, cerr := exec.Command(Python, "-c", "import "+m).CombinedOutput(); cerr != nil {
				err = &importError{cerr, strings.TrimSpace(string(out))}
			}
			v, _ = imports.LoadOrStore(m, err)
		}
		if err, _ := v.(error); err != nil {
			Missing(t, "%s cannot import %s (apt-get install -y python3-django python3-psycopg2 python3-mysqldb python3-django-pgschemas): %v", Python, m, err)
		}
	}
}

type importError struct {
	err error
	out string
}

func (e *importError) Error() string { return e.err.Error() + ": " + e.out }

// CopyProject copies the fixture project src into dst, leaving out
// __pycache__ and .siteplex folders and files whose names end in one of
// skip.
func CopyProject(t testing.TB, src, dst string, skip ...string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == "__pycache__" || d.Name() == ".siteplex" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		for _, s := range skip {
			if strings.HasSuffix(p, s) {
				return nil
			}
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copying the fixture project %s: %v", src, err)
	}
}

// Migrate runs the real `manage.py migrate` in dir with env added.
func Migrate(t testing.TB, dir string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Python, "manage.py", "migrate", "--noinput")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PYTHONDONTWRITEBYTECODE=1"}, env...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("manage.py migrate in %s: %v\n%s", dir, err, out)
	}
}

// Manage runs `manage.py args…` with Debian's Python in dir, env added,
// and returns its standard output; a failure fails the test with the
// output.
func Manage(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, Python, append([]string{"manage.py"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PYTHONDONTWRITEBYTECODE=1"}, env...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("manage.py %s in %s: %v\n%s%s", strings.Join(args, " "), dir, err, out, stderr.String())
	}
	return string(out)
}

// PGSchemasProject copies sites/testdata/pgschemasproj (django-pgschemas
// 0.12, static tenants www and blog in TENANTS) into a temp folder and
// migrates it on a fresh database db of the throw-away PostgreSQL. It
// returns the folder, the PG* variables its settings read the database
// from, and the database's URL. It skips loudly without Django, psycopg2,
// django_pgschemas or PostgreSQL.
func PGSchemasProject(t testing.TB, db string) (dir string, env []string, url string) {
	t.Helper()
	NeedPython(t, "django", "psycopg2", "django_pgschemas")
	pg := StartPostgres(t)
	url = pg.CreateDB(t, db)
	dir = t.TempDir()
	CopyProject(t, filepath.Join(Testdata(t), "..", "sites", "testdata", "pgschemasproj"), dir)
	env = []string{"PGDATABASE=" + db, "PGHOST=" + pg.Host, "PGPORT=" + strconv.Itoa(pg.Port), "PGUSER=" + pg.User}
	Migrate(t, dir, env...)
	return dir, env, url
}
