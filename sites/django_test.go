package sites_test

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// systemPython is Debian's Python, the one python3-django installs into.
const systemPython = "/usr/bin/python3"

// needDjango skips loudly unless systemPython can import the modules.
func needDjango(t *testing.T, modules ...string) {
	t.Helper()
	for _, m := range append([]string{"django"}, modules...) {
		if out, err := exec.Command(systemPython, "-c", "import "+m).CombinedOutput(); err != nil {
			testenv.Missing(t, "%s cannot import %s (apt-get install -y python3-django python3-psycopg2): %v %s", systemPython, m, err, out)
		}
	}
}

// copyDjangoProject copies testdata/djangoproj into a temp folder.
func copyDjangoProject(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join("testdata", "djangoproj")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			if d.Name() == "__pycache__" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		if strings.HasSuffix(p, ".sqlite3") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// migrate runs the real `manage.py migrate` in dir.
func migrate(t *testing.T, dir string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, "manage.py", "migrate", "--noinput")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PYTHONDONTWRITEBYTECODE=1"}, env...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("manage.py migrate: %v\n%s", err, out)
	}
}

// djangoWant is what testdata/djangoproj/tenants/migrations/0002_sites.py
// creates, with SITE_ID=2 forced.
func djangoWant() []sites.Site {
	return []sites.Site{
		{ID: 1, Name: "example.com", Domain: "example.com", Slug: "example-com", Enabled: true, LocalDomain: "example-com.localhost"},
		{ID: 2, Name: "Ghana", Domain: "example.gh", Slug: "gh", RealDomain: str("www.example.gh"), Enabled: true,
			Aliases: []string{"example.gh", "gh.example-stage.eu"}, LocalDomain: "gh.localhost", Forced: true},
		{ID: 3, Name: "Germany", Domain: "example.de", Slug: "de", RealDomain: str("www.example.de"), Enabled: false,
			Aliases: []string{"example.de"}, LocalDomain: "de.localhost"},
		{ID: 4, Name: "Port Site", Domain: "Example.ORG:8000", Slug: "example-org", Enabled: true, LocalDomain: "example-org.localhost"},
	}
}

func TestRealDjangoSQLite(t *testing.T) {
	needDjango(t)
	dir := copyDjangoProject(t)
	migrate(t, dir)
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte("SITE_ID=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Found the way a user runs it: from a subfolder, db.sqlite3 by default.
	got := mustLoad(t, sites.Options{Cwd: filepath.Join(dir, "tenants")})
	compareSites(t, got, djangoWant())
}

func TestRealDjangoPostgres(t *testing.T) {
	needDjango(t, "psycopg2")
	pg := testenv.StartPostgres(t)
	u := pg.CreateDB(t, "djangoproj")
	dir := copyDjangoProject(t)
	migrate(t, dir, "PGDATABASE=djangoproj", "PGHOST="+pg.Host, "PGPORT="+strconv.Itoa(pg.Port), "PGUSER="+pg.User)
	if err := os.WriteFile(filepath.Join(dir, ".env-local"), []byte("SITE_ID=2\nDATABASE_URL="+u+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got := mustLoad(t, sites.Options{Project: dir})
	compareSites(t, got, djangoWant())
}
