package doctor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/doctor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

// childEnv makes the test binary run one check and print it as JSON
// instead of running the tests: asNobody uses it to run a check as uid
// 65534.
const childEnv = "SITEPLEX_DOCTOR_TEST_CHILD"

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		os.Exit(runChild(name, os.Getenv(childEnv+"_ARG")))
	}
	code := m.Run()
	testenv.StopPostgres()
	testenv.StopMariaDB()
	testenv.StopDocker()
	os.Exit(code)
}

func runChild(name, arg string) int {
	var c doctor.Check
	switch name {
	case doctor.NameHostsFile:
		c = doctor.HostsFile(arg)
	case doctor.NameProxyPort:
		c = doctor.ProxyPort(context.Background(), []string{arg})
	case doctor.NameHTTPSPort:
		c = doctor.HTTPSPort(context.Background(), []string{arg}, true)
	default:
		fmt.Fprintln(os.Stderr, "unknown check", name)
		return 3
	}
	json.NewEncoder(os.Stdout).Encode(c)
	return 0
}

// asNobody runs check name with arg as uid/gid 65534 (setpriv), in a copy
// of the test binary that user may execute.
func asNobody(t *testing.T, name, arg string) doctor.Check {
	t.Helper()
	dir, err := os.MkdirTemp("", "doctor-child-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "doctor.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := testenv.AsNobody(context.Background(), t, bin)
	cmd.Env = append(os.Environ(), childEnv+"="+name, childEnv+"_ARG="+arg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child check as uid 65534: %v\n%s", err, stderr.String())
	}
	var c doctor.Check
	if err := json.Unmarshal(out, &c); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	return c
}

// expect checks status and that detail and fix contain the given strings.
func expect(t *testing.T, c doctor.Check, name string, st doctor.Status, detail, fix []string) {
	t.Helper()
	if c.Name != name {
		t.Errorf("name = %q, want %q", c.Name, name)
	}
	if c.Status != st {
		t.Errorf("%s: status = %s, want %s (detail %q, fix %q)", name, c.Status, st, c.Detail, c.Fix)
	}
	for _, d := range detail {
		if !strings.Contains(c.Detail, d) {
			t.Errorf("%s: detail %q does not contain %q", name, c.Detail, d)
		}
	}
	for _, f := range fix {
		if !strings.Contains(c.Fix, f) {
			t.Errorf("%s: fix %q does not contain %q", name, c.Fix, f)
		}
	}
	if st != doctor.OK && c.Fix == "" && fix != nil {
		t.Errorf("%s: %s without a fix", name, st)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func TestProject(t *testing.T) {
	django, divio, empty := t.TempDir(), t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(django, "manage.py"), "", 0o644)
	writeFile(t, filepath.Join(divio, ".divio", "config.json"), "{}", 0o644)
	tests := []struct {
		name, root string
		st         doctor.Status
		detail     string
	}{
		{"manage.py", django, doctor.OK, "manage.py"},
		{"divio", divio, doctor.OK, ".divio/config.json"},
		{"nothing", empty, doctor.Fail, "no manage.py or .divio/config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fix []string
			if tt.st == doctor.Fail {
				fix = []string{"--project DIR"}
			}
			expect(t, doctor.Project(tt.root), doctor.NameProject, tt.st, []string{tt.detail}, fix)
		})
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "manage.py"), "", 0o644)
	p, err := sites.Load(sites.Options{Project: dir, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, doctor.Config(p, nil), doctor.NameConfig, doctor.OK, []string{"no siteplex.toml", "{slug}.localhost"}, nil)

	writeFile(t, filepath.Join(dir, "siteplex.toml"), "domain_fromat = '{}.test'\n", 0o644)
	_, err = sites.Load(sites.Options{Project: dir, Getenv: func(string) string { return "" }})
	if err == nil {
		t.Fatal("Load accepted an unknown key")
	}
	expect(t, doctor.Config(nil, err), doctor.NameConfig, doctor.Fail, []string{"domain_fromat"}, []string{"siteplex.toml"})
}

func TestEnvFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.env")
	writeFile(t, good, "# comment\nDATABASE_URL=sqlite:///db.sqlite3\nexport SITE_ID=2\n", 0o644)
	garbage := filepath.Join(dir, "garbage.env")
	writeFile(t, garbage, "SITE_ID=2\nthis is not an assignment\n", 0o644)
	tests := []struct {
		name, path string
		st         doctor.Status
		detail     []string
	}{
		{"readable", good, doctor.OK, []string{"2 variables", "DATABASE_URL, SITE_ID"}},
		{"missing", filepath.Join(dir, "none"), doctor.OK, []string{"no env file"}},
		{"garbage line", garbage, doctor.Warn, []string{"garbage.env:2"}},
		{"a folder", dir, doctor.Fail, []string{"cannot read", "is a directory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fix []string
			if tt.st != doctor.OK {
				fix = []string{""}
			}
			expect(t, doctor.EnvFile(tt.path), doctor.NameEnvFile, tt.st, tt.detail, fix)
		})
	}
}

const pgSiteDDL = `CREATE TABLE "django_site" ("id" serial NOT NULL PRIMARY KEY,
  "domain" varchar(100) NOT NULL UNIQUE, "name" varchar(50) NOT NULL);
CREATE INDEX "django_site_domain_a2e37b91_like" ON "django_site" ("domain" varchar_pattern_ops);
INSERT INTO django_site (id, domain, name) VALUES (1, 'www.example.gh', 'Ghana'), (2, 'example.de', 'Germany');`

const pgPlusDDL = `CREATE TABLE "django_multisite_plus_site" ("site_id" integer NOT NULL PRIMARY KEY,
  "real_domain" varchar(255) NOT NULL, "slug" varchar(255) NOT NULL UNIQUE, "is_enabled" boolean NOT NULL,
  "last_updated_at" timestamp with time zone NOT NULL, "extra_uwsgi_ini" text NOT NULL);`

func loadProject(t *testing.T, dir, db string) *sites.Project {
	t.Helper()
	p, err := sites.Load(sites.Options{Project: dir, DB: db, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dbCase is one case of the database check: the URL and what the check
// says about it.
type dbCase struct {
	name, db string
	st       doctor.Status
	detail   []string
	fix      []string
}

// checkDatabase runs the database check on each case, in a project at dir;
// a passing check has read 2 sites. None of secrets may show, and no fix
// may offer PostgreSQL URLs only.
func checkDatabase(t *testing.T, dir string, tests []dbCase, secrets ...string) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadProject(t, dir, tt.db)
			c, found := doctor.Database(context.Background(), p, nil)
			expect(t, c, doctor.NameDatabase, tt.st, tt.detail, tt.fix)
			if tt.st == doctor.OK && len(found.Sites) != 2 {
				t.Errorf("sites = %d, want 2", len(found.Sites))
			}
			for _, s := range secrets {
				if strings.Contains(c.Detail+c.Fix, s) {
					t.Errorf("the check leaks %q: %+v", s, c)
				}
			}
			if strings.Contains(c.Fix, "postgres://") && !strings.Contains(c.Fix, "mysql://") {
				t.Errorf("the fix names PostgreSQL only: %q", c.Fix)
			}
		})
	}
}

// projectDir is a temp folder with an empty manage.py.
func projectDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "manage.py"), "", 0o644)
	return dir
}

func TestDatabase(t *testing.T) {
	pg := testenv.StartPostgres(t)
	full := pg.CreateDB(t, "doctor_full")
	pg.Exec(t, "doctor_full", pgSiteDDL+pgPlusDDL)
	empty := pg.CreateDB(t, "doctor_empty")
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	checkDatabase(t, projectDir(t), []dbCase{
		{"tables found", full, doctor.OK, []string{"django_site ✓", "multisite_alias absent", "django_multisite_plus_site ✓", "2 sites"}, nil},
		{"no django_site", empty, doctor.Fail, []string{"django_site absent"}, []string{"manage.py migrate"}},
		{"closed port", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/db?sslmode=disable", port), doctor.Fail,
			[]string{"connection refused"}, []string{"database server is running"}},
		{"bad URL", "mysqlx://nope", doctor.Fail, nil, []string{"fix the database URL"}},
		{"no database", "", doctor.Fail, []string{"no database found"}, []string{"--db URL"}},
	}, "postgres@", "password")
}

// TestDatabaseMySQL: the database check on a real MariaDB.
func TestDatabaseMySQL(t *testing.T) {
	m := testenv.StartMariaDB(t)
	full := m.DjangoDB(t, "doctor_full", `INSERT INTO django_site (id, domain, name) VALUES (1, 'www.example.gh', 'Ghana'), (2, 'example.de', 'Germany')`)
	m.CreateDB(t, "doctor_empty")
	const pw, wrong = "d0ctor-s3cret", "n0t-th3-pw"
	withPw := m.CreatePasswordUser(t, "doctor_app", pw, "doctor_full")
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	checkDatabase(t, projectDir(t), []dbCase{
		{"tables found", full, doctor.OK, []string{"mysql 127.0.0.1:", "/doctor_full", "django_site ✓", "multisite_alias ✓", "django_multisite_plus_site ✓", "2 sites"}, nil},
		{"password user", withPw, doctor.OK, []string{"2 sites"}, nil},
		{"no django_site", m.URL("doctor_empty"), doctor.Fail, []string{"django_site absent"}, []string{"manage.py migrate"}},
		{"wrong password", strings.Replace(withPw, pw, wrong, 1), doctor.Fail, []string{`refused user "doctor_app": authentication failed`}, []string{"check the URL"}},
		{"no such database", m.URL("doctor_nowhere"), doctor.Fail, []string{`has no database "doctor_nowhere"`}, []string{"check the URL"}},
		{"closed port", fmt.Sprintf("mysql://root@127.0.0.1:%d/db", port), doctor.Fail, []string{"connection refused"}, []string{"database server is running"}},
		{"bad URL", "mysql://root@127.0.0.1:3306/", doctor.Fail, []string{"names no database"}, []string{"mysql://user:pass@host:port/name"}},
	}, pw, wrong)
}

// djangoProject is a temp Django project whose .venv/bin/python is a real
// interpreter: with withDjango, Debian's /usr/bin/python3 (Django 3.2);
// without, a fresh venv made from it that has no Django.
func djangoProject(t *testing.T, withDjango bool) string {
	t.Helper()
	testenv.NeedPython(t, "django")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "manage.py"), "", 0o644)
	venv := filepath.Join(dir, ".venv")
	if withDjango {
		if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(testenv.Python, filepath.Join(venv, "bin", "python")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	if out, err := exec.Command(testenv.Python, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		testenv.Missing(t, "python3 -m venv: %v %s", err, out)
	}
	return dir
}

func TestPython(t *testing.T) {
	withDjango := djangoProject(t, true)
	noDjango := djangoProject(t, false)
	noManage := t.TempDir()
	tests := []struct {
		name, root string
		needed     bool
		st         doctor.Status
		detail     []string
		fix        []string
	}{
		{"django found", withDjango, true, doctor.OK, []string{".venv/bin/python", "Django 3.2", "manage.py found"}, nil},
		{"venv without django", noDjango, true, doctor.Fail, []string{"cannot import Django", "No module named 'django'"}, []string{"pip install"}},
		{"no manage.py", noManage, true, doctor.Fail, []string{"no manage.py"}, []string{"--project"}},
		{"not needed (docker runner)", noDjango, false, doctor.Warn, []string{"cannot import Django"}, []string{"pip install"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := sites.Load(sites.Options{Project: tt.root, Getenv: func(string) string { return "" }})
			if err != nil {
				t.Fatal(err)
			}
			expect(t, doctor.PythonFor(context.Background(), p, tt.needed), doctor.NamePython, tt.st, tt.detail, tt.fix)
		})
	}
}

// busyAndFree returns an address this test listens on until it ends, and
// a free port.
func busyAndFree(t *testing.T) (busy string, free int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	free, err = testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return l.Addr().String(), free
}

func TestProxyPort(t *testing.T) {
	busy, free := busyAndFree(t)
	t.Run("free", func(t *testing.T) {
		addr := "127.0.0.1:" + strconv.Itoa(free)
		expect(t, doctor.ProxyPort(context.Background(), []string{addr}), doctor.NameProxyPort, doctor.OK, []string{addr + " is free"}, nil)
	})
	t.Run("in use", func(t *testing.T) {
		// The holder is this test binary; /proc names it.
		c := doctor.ProxyPort(context.Background(), []string{busy})
		expect(t, c, doctor.NameProxyPort, doctor.Fail,
			[]string{busy + " is already in use by ", fmt.Sprintf("(pid %d)", os.Getpid())}, []string{"--listen 127.0.0.1:8080"})
	})
	t.Run("bad address", func(t *testing.T) {
		expect(t, doctor.ProxyPort(context.Background(), []string{"nonsense"}), doctor.NameProxyPort, doctor.Fail, []string{"cannot bind nonsense"}, []string{"--listen"})
	})
	t.Run("port 80 as uid 65534", func(t *testing.T) {
		start := testenv.NeedPrivilegedPort(t, 80)
		c := asNobody(t, doctor.NameProxyPort, "127.0.0.1:80")
		expect(t, c, doctor.NameProxyPort, doctor.Fail,
			[]string{"cannot bind 127.0.0.1:80: permission denied", fmt.Sprintf("ip_unprivileged_port_start = %d", start)},
			[]string{"setcap cap_net_bind_service=+ep", "sysctl -w net.ipv4.ip_unprivileged_port_start=80", "--listen 127.0.0.1:8080"})
	})
}

// TestHTTPSPort: the https_port check binds like proxy_port, and its fixes
// name --https (and --https off when HTTPS is on only because the CA
// exists).
func TestHTTPSPort(t *testing.T) {
	busy, free := busyAndFree(t)
	addr := "127.0.0.1:" + strconv.Itoa(free)
	tests := []struct {
		name      string
		addrs     []string
		byDefault bool
		st        doctor.Status
		detail    []string
		fix       []string
		notFix    string
	}{
		{"free", []string{addr}, false, doctor.OK, []string{addr + " is free"}, nil, ""},
		{"in use, asked for", []string{busy}, false, doctor.Fail, []string{busy + " is already in use by "}, []string{"--https 127.0.0.1:8443"}, "--https off"},
		{"in use, by default", []string{busy}, true, doctor.Fail, []string{busy + " is already in use by "}, []string{"--https 127.0.0.1:8443", "--https off (HTTPS is on because the local CA exists"}, "--listen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := doctor.HTTPSPort(context.Background(), tt.addrs, tt.byDefault)
			expect(t, c, doctor.NameHTTPSPort, tt.st, tt.detail, tt.fix)
			if tt.notFix != "" && strings.Contains(c.Fix, tt.notFix) {
				t.Errorf("fix %q names %q", c.Fix, tt.notFix)
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		expect(t, doctor.HTTPSOff("no local CA yet"), doctor.NameHTTPSPort, doctor.OK, []string{"HTTPS is off: no local CA yet"}, nil)
	})
	t.Run("port 443 as uid 65534", func(t *testing.T) {
		testenv.NeedPrivilegedPort(t, 443)
		c := asNobody(t, doctor.NameHTTPSPort, "127.0.0.1:443")
		expect(t, c, doctor.NameHTTPSPort, doctor.Fail,
			[]string{"cannot bind 127.0.0.1:443: permission denied"},
			[]string{"setcap cap_net_bind_service=+ep", "sysctl -w net.ipv4.ip_unprivileged_port_start=443", "--https 127.0.0.1:8443", "--https off"})
	})
}

func TestHostsFile(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	rw := filepath.Join(dir, "hosts-rw")
	writeFile(t, rw, "127.0.0.1 localhost\n", 0o644)
	ro := filepath.Join(dir, "hosts-ro")
	writeFile(t, ro, "127.0.0.1 localhost\n", 0o444)
	// The temp dir's parent is private to root; uid 65534 needs a path.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	t.Run("writable", func(t *testing.T) {
		expect(t, doctor.HostsFile(rw), doctor.NameHostsFile, doctor.OK, []string{rw + " is writable"}, nil)
	})
	t.Run("missing", func(t *testing.T) {
		expect(t, doctor.HostsFile(filepath.Join(dir, "none")), doctor.NameHostsFile, doctor.Fail, []string{"does not exist"}, []string{"--hosts-file"})
	})
	t.Run("0444 as uid 65534", func(t *testing.T) {
		before, _ := os.Stat(ro)
		c := asNobody(t, doctor.NameHostsFile, ro)
		expect(t, c, doctor.NameHostsFile, doctor.Fail, []string{ro + " is not writable by", "uid 65534", "-r--r--r--"},
			[]string{"sudo ", " hosts apply --hosts-file " + ro})
		after, _ := os.Stat(ro)
		if before.ModTime() != after.ModTime() || after.Mode() != before.Mode() {
			t.Errorf("the check changed the file: %v %v → %v %v", before.Mode(), before.ModTime(), after.Mode(), after.ModTime())
		}
	})
}

func TestDocker(t *testing.T) {
	dead := filepath.Join(t.TempDir(), "dead.sock")
	l, err := net.Listen("unix", dead)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close() // the socket file stays, nobody listens: ECONNREFUSED
	port, _ := testenv.FreePort()
	tests := []struct {
		name, host string
		needed     bool
		st         doctor.Status
		detail     []string
	}{
		{"dead socket, compose project", "unix://" + dead, true, doctor.Fail, []string{"Docker is not reachable at unix://" + dead, "connection refused"}},
		{"dead socket, no Docker features", "unix://" + dead, false, doctor.Warn, []string{"Docker is not reachable at unix://" + dead}},
		{"no socket", "unix:///nonexistent/docker.sock", true, doctor.Fail, []string{"no such file or directory"}},
		{"closed tcp port", "tcp://127.0.0.1:" + strconv.Itoa(port), true, doctor.Fail, []string{"Docker is not reachable at tcp://127.0.0.1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expect(t, doctor.Docker(context.Background(), tt.host, tt.needed), doctor.NameDocker, tt.st, tt.detail,
				[]string{"only Docker features"})
		})
	}
	t.Run("real engine", func(t *testing.T) {
		d := testenv.StartDocker(t)
		expect(t, doctor.Docker(context.Background(), d.Host, true), doctor.NameDocker, doctor.OK, []string{"Docker answers at " + d.Host, "API "}, nil)
	})
}

func TestResolution(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		st    doctor.Status
		// okStatuses, when set, also accepts these (the machine decides).
		alsoOK bool
		detail []string
	}{
		{"localhost", []string{"localhost"}, doctor.OK, false, []string{"localhost → loopback"}},
		{"loopback literal", []string{"127.0.0.1", "::1"}, doctor.OK, false, []string{"→ loopback"}},
		{"public address", []string{"localhost", "192.0.2.7"}, doctor.Fail, false, []string{"192.0.2.7 resolves to 192.0.2.7, not loopback"}},
		{"unknown non-localhost name", []string{"siteplex-doctor-test.invalid"}, doctor.Fail, false, []string{"siteplex-doctor-test.invalid does not resolve"}},
		// *.localhost: loopback where the system maps it, else only a warning.
		{"unresolved .localhost", []string{"siteplex-doctor-test.localhost"}, doctor.Warn, true, []string{"siteplex-doctor-test.localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := doctor.Resolution(context.Background(), net.DefaultResolver, tt.names)
			if tt.alsoOK && c.Status == doctor.OK {
				return
			}
			var fix []string
			if tt.st != doctor.OK {
				fix = []string{"hosts apply --names local"}
			}
			expect(t, c, doctor.NameResolution, tt.st, tt.detail, fix)
		})
	}
}

func TestReportOK(t *testing.T) {
	tests := []struct {
		statuses []doctor.Status
		ok       bool
	}{
		{nil, true},
		{[]doctor.Status{doctor.OK, doctor.Warn}, true},
		{[]doctor.Status{doctor.OK, doctor.Fail, doctor.Warn}, false},
	}
	for _, tt := range tests {
		var cs []doctor.Check
		for i, s := range tt.statuses {
			cs = append(cs, doctor.Check{Name: strconv.Itoa(i), Status: s})
		}
		r := doctor.NewReport(cs)
		if r.OK != tt.ok || r.Checks == nil {
			t.Errorf("%v: OK = %v, want %v (checks %v)", tt.statuses, r.OK, tt.ok, r.Checks)
		}
	}
}
