package sites_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

func TestFindRootWalksUp(t *testing.T) {
	tests := []struct {
		name   string
		marker string
	}{
		{"manage.py", "manage.py"},
		{"divio", ".divio/config.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{tt.marker: "", "app/templates/x.html": ""})
			p, err := sites.Load(sites.Options{Cwd: filepath.Join(dir, "app", "templates"), Getenv: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			if p.Root != dir {
				t.Errorf("Root = %s, want %s", p.Root, dir)
			}
			if p.Name != filepath.Base(dir) {
				t.Errorf("Name = %s", p.Name)
			}
		})
	}
	t.Run("no marker: the current folder", func(t *testing.T) {
		dir := t.TempDir()
		p, err := sites.Load(sites.Options{Cwd: dir, Getenv: noEnv})
		if err != nil || p.Root != dir || p.IsDjango {
			t.Fatalf("Load = %+v, %v", p, err)
		}
	})
	t.Run("--project that is not a folder", func(t *testing.T) {
		_, err := sites.Load(sites.Options{Project: "/nonexistent/x", Getenv: noEnv})
		if !sites.IsUsage(err) || err.Error() != "--project /nonexistent/x: not a folder" {
			t.Errorf("err = %v", err)
		}
	})
}

func TestEnvFileChoice(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		flag    string
		want    string
		exists  bool
		siteID  string
		cfgPath string
	}{
		{name: ".env-local first", files: map[string]string{".env-local": "SITE_ID=1\n", ".env": "SITE_ID=2\n"}, want: ".env-local", exists: true, siteID: "1"},
		{name: ".env next", files: map[string]string{".env": "SITE_ID=2\n"}, want: ".env", exists: true, siteID: "2"},
		{name: "neither: .env-local to create", files: map[string]string{}, want: ".env-local"},
		{name: "flag", files: map[string]string{"other.env": "SITE_ID=3\n", ".env-local": "SITE_ID=1\n"}, flag: "other.env", want: "other.env", exists: true, siteID: "3"},
		{name: "config", files: map[string]string{"conf/x.env": "SITE_ID=4\n", ".env-local": "", "siteplex.toml": "env_file = \"conf/x.env\"\n"},
			want: "conf/x.env", exists: true, siteID: "4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, tt.files)
			flag := ""
			if tt.flag != "" {
				flag = filepath.Join(dir, tt.flag)
			}
			p, err := sites.Load(sites.Options{Project: dir, EnvFile: flag, Getenv: noEnv})
			if err != nil {
				t.Fatal(err)
			}
			if p.Env.Path != filepath.Join(dir, tt.want) || p.Env.Exists() != tt.exists || p.Env.Values["SITE_ID"] != tt.siteID {
				t.Errorf("env file %s exists=%v SITE_ID=%q", p.Env.Path, p.Env.Exists(), p.Env.Values["SITE_ID"])
			}
		})
	}
}

func TestEnvFileGarbageLines(t *testing.T) {
	dir := writeFiles(t, map[string]string{".env-local": "# comment\n\nDEBUG=True\nthis is not a setting\nexport SITE_ID=2\n=novalue\n1BAD=x\nDATABASE_URL=\"sqlite:///db.sqlite3\" # the db\nOK='quoted # value'\r\nTRAIL=val # comment\n"})
	p, err := sites.Load(sites.Options{Project: dir, Getenv: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ".env-local")
	want := []string{
		path + ":4: skipped a line that is not KEY=VALUE",
		path + ":6: skipped a line that is not KEY=VALUE",
	}
	if strings.Join(p.Env.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(p.Env.Warnings, "\n"), strings.Join(want, "\n"))
	}
	for k, v := range map[string]string{"DEBUG": "True", "SITE_ID": "2", "DATABASE_URL": "sqlite:///db.sqlite3", "OK": "quoted # value", "TRAIL": "val", "1BAD": "x"} {
		if p.Env.Values[k] != v {
			t.Errorf("%s = %q, want %q", k, p.Env.Values[k], v)
		}
	}
	if p.ForcedID() != 2 {
		t.Errorf("ForcedID = %d", p.ForcedID())
	}
}

// TestDatabaseDiscoveryOrder checks docs/sites.md's order: --db, config, the process's
// SITEPLEX_DATABASE_URL then DATABASE_URL, the env file, db.sqlite3, then
// data/db.sqlite3. Each case removes the winner of the one before.
func TestDatabaseDiscoveryOrder(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"db.sqlite3":      "",
		"data/db.sqlite3": "",
		".env-local":      "DATABASE_URL=postgres://envfile@h/db\n",
		"siteplex.toml":   "database = \"postgres://config@h/db\"\n",
	})
	env := map[string]string{"SITEPLEX_DATABASE_URL": "postgres://siteplexenv@h/db", "DATABASE_URL": "postgres://processenv@h/db"}
	getenv := func(k string) string { return env[k] }
	steps := []struct {
		flag       string
		wantUser   string
		wantPath   string
		wantSource string
		after      func() // removes this step's winner
	}{
		{flag: "postgres://flag@h/db", wantUser: "flag", wantSource: "--db"},
		{wantUser: "config", wantSource: "database in siteplex.toml",
			after: func() { os.WriteFile(filepath.Join(dir, "siteplex.toml"), nil, 0o644) }},
		{wantUser: "siteplexenv", wantSource: "SITEPLEX_DATABASE_URL", after: func() { delete(env, "SITEPLEX_DATABASE_URL") }},
		{wantUser: "processenv", wantSource: "DATABASE_URL", after: func() { delete(env, "DATABASE_URL") }},
		{wantUser: "envfile", wantSource: "DATABASE_URL in .env-local", after: func() { os.Remove(filepath.Join(dir, ".env-local")) }},
		{wantPath: filepath.Join(dir, "db.sqlite3"), wantSource: "db.sqlite3", after: func() { os.Remove(filepath.Join(dir, "db.sqlite3")) }},
		{wantPath: filepath.Join(dir, "data", "db.sqlite3"), wantSource: "data/db.sqlite3"},
	}
	for i, st := range steps {
		p, err := sites.Load(sites.Options{Project: dir, DB: st.flag, Getenv: getenv})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		db, err := p.ResolveDB(context.Background(), nil)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if db.User != st.wantUser || db.Path != st.wantPath || db.Source != st.wantSource {
			t.Errorf("step %d: got user %q path %q source %q; want %q %q %q", i, db.User, db.Path, db.Source, st.wantUser, st.wantPath, st.wantSource)
		}
		if st.after != nil {
			st.after()
		}
	}
	os.Remove(filepath.Join(dir, "data", "db.sqlite3"))
	p, _ := sites.Load(sites.Options{Project: dir, Getenv: getenv})
	_, err := p.ResolveDB(context.Background(), nil)
	if !errors.Is(err, sites.ErrNoDatabase) {
		t.Fatalf("no database: err = %v", err)
	}
	want := "no database found in " + dir + ": pass --db URL, set DATABASE_URL in " + filepath.Join(dir, ".env-local") + ", or declare sites in siteplex.toml"
	if err.Error() != want {
		t.Errorf("message\n got  %s\n want %s", err, want)
	}
}

func TestRelativeSQLitePathIsFromProjectRoot(t *testing.T) {
	e := sqliteEngine()
	u := e.build(t, fixture{Sites: []fxSite{{ID: 1, Domain: "a.example", Name: "A"}}})
	dir := writeFiles(t, map[string]string{"manage.py": "", "sub/deeper/x": ""})
	// Put the database at <root>/var/app.db and refer to it relatively from
	// the env file, while siteplex runs in a subfolder.
	src := strings.TrimPrefix(u, "sqlite:///")
	os.MkdirAll(filepath.Join(dir, "var"), 0o755)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "var", "app.db"), b, 0o644)
	os.WriteFile(filepath.Join(dir, ".env"), []byte("DATABASE_URL=sqlite:///var/app.db\n"), 0o644)
	got := mustLoad(t, sites.Options{Cwd: filepath.Join(dir, "sub", "deeper")})
	if len(got) != 1 || got[0].Domain != "a.example" {
		t.Fatalf("sites = %+v", got)
	}
}

func TestDeclaredSites(t *testing.T) {
	e := sqliteEngine()
	fx := fixture{Plus: true, Sites: []fxSite{
		{ID: 2, Domain: "example.gh", Name: "Ghana", Plus: &fxPlus{Slug: "gh", RealDomain: "www.example.gh", Enabled: true}},
		{ID: 3, Domain: "example.de", Name: "Germany"},
	}}
	config := `
[sites.gh]
domain = "ignored.example"
name = "Ignored"
aliases = ["gh.test"]
env = { DJANGO_SETTINGS_MODULE = "settings.gh" }

[sites.germany]
id = 3
command = ["python3", "manage.py", "runserver", "{port}"]

[sites.extra]
id = 40
domain = "extra.example"
aliases = ["x.extra.example"]
`
	t.Run("merged with the database", func(t *testing.T) {
		u := e.build(t, fx)
		dir := writeFiles(t, map[string]string{"siteplex.toml": config})
		got := mustLoad(t, sites.Options{Project: dir, DB: u})
		compareSites(t, got, []sites.Site{
			{ID: 2, Name: "Ghana", Domain: "example.gh", Slug: "gh", RealDomain: str("www.example.gh"), Enabled: true, Aliases: []string{"gh.test"}, LocalDomain: "gh.localhost"},
			{ID: 3, Name: "Germany", Domain: "example.de", Slug: "germany", Enabled: true, LocalDomain: "germany.localhost"},
			{ID: 40, Name: "extra.example", Domain: "extra.example", Slug: "extra", Enabled: true, Aliases: []string{"x.extra.example"}, LocalDomain: "extra.localhost",
				Origin: sites.Origin{Source: sites.SourceConfig}},
		})
		if got[0].Env["DJANGO_SETTINGS_MODULE"] != "settings.gh" || !got[0].Declared {
			t.Errorf("site 2: env %v declared %v", got[0].Env, got[0].Declared)
		}
		if strings.Join(got[1].Command, " ") != "python3 manage.py runserver {port}" {
			t.Errorf("site 3: command %q", got[1].Command)
		}
	})
	t.Run("config aliases extend the database's", func(t *testing.T) {
		u := e.build(t, fixture{Alias: true,
			Sites: []fxSite{{ID: 1, Domain: "a.example", Name: "A"}, {ID: 2, Domain: "b.example", Name: "B"}},
			Aliases: []fxAlias{{SiteID: 1, Domain: "a.example", Canonical: true}, {SiteID: 2, Domain: "b.example", Canonical: true},
				{SiteID: 2, Domain: "b2.example"}}})
		dir := writeFiles(t, map[string]string{"siteplex.toml": "[sites.first]\nid = 1\naliases = [\"a.test\", \"a.example\"]\n"})
		got := mustLoad(t, sites.Options{Project: dir, DB: u})
		if a := strings.Join(got[0].Aliases, ","); a != "a.example,a.test" {
			t.Errorf("site 1 aliases = %s", a)
		}
		if a := strings.Join(got[1].Aliases, ","); a != "b.example,b2.example" {
			t.Errorf("site 2 aliases = %s (site 1's config alias leaked?)", a)
		}
	})
	t.Run("only source without a database", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{"siteplex.toml": `
[sites.beta]
domain = "beta.example"
name = "Beta"

[sites.alpha]
domain = "Alpha.Example:8000"

[sites.gamma]
id = 1
domain = "gamma.example"
`, ".env-local": "SITE_ID=1\n"})
		got := mustLoad(t, sites.Options{Project: dir})
		cfg := sites.Origin{Source: sites.SourceConfig}
		compareSites(t, got, []sites.Site{
			{ID: 1, Name: "gamma.example", Domain: "gamma.example", Slug: "gamma", Enabled: true, LocalDomain: "gamma.localhost", Forced: true, Origin: cfg},
			{ID: 2, Name: "Alpha.Example:8000", Domain: "Alpha.Example:8000", Slug: "alpha", Enabled: true, LocalDomain: "alpha.localhost", Origin: cfg},
			{ID: 3, Name: "Beta", Domain: "beta.example", Slug: "beta", Enabled: true, LocalDomain: "beta.localhost", Origin: cfg},
		})
	})
	t.Run("a declared site with no domain that matches nothing", func(t *testing.T) {
		u := e.build(t, fx)
		dir := writeFiles(t, map[string]string{"siteplex.toml": "[sites.nope]\nname = \"x\"\n"})
		_, err := loadSites(t, sites.Options{Project: dir, DB: u})
		want := "config " + filepath.Join(dir, "siteplex.toml") + ": [sites.nope] has no domain and matches no site in the database"
		if !sites.IsUsage(err) || err == nil || err.Error() != want {
			t.Errorf("err = %v\nwant %s", err, want)
		}
	})
}

func TestConfigHTTPS(t *testing.T) {
	tests := []struct {
		toml     string
		want     sites.HTTPSSetting
		redirect *bool
	}{
		{"", sites.HTTPSSetting{}, nil},
		{"https = \"off\"\n", sites.HTTPSSetting{Off: true}, nil},
		{"https = \"OFF\"\nhttps_redirect = false\n", sites.HTTPSSetting{Off: true}, new(false)},
		{"https = [\"127.0.0.1:8443\", \"[::1]:8443\"]\nhttps_redirect = true\n", sites.HTTPSSetting{Addrs: []string{"127.0.0.1:8443", "[::1]:8443"}}, new(true)},
	}
	for _, tt := range tests {
		dir := writeFiles(t, map[string]string{"siteplex.toml": "name = \"x\"\n" + tt.toml})
		c, err := sites.ReadConfig(filepath.Join(dir, "siteplex.toml"))
		if err != nil {
			t.Fatalf("%q: %v", tt.toml, err)
		}
		if !reflect.DeepEqual(c.HTTPS, tt.want) || !reflect.DeepEqual(c.HTTPSRedirect, tt.redirect) || c.HTTPS.Set() != (tt.toml != "" && !strings.HasPrefix(tt.toml, "https_")) {
			t.Errorf("%q: %+v %v, want %+v %v", tt.toml, c.HTTPS, c.HTTPSRedirect, tt.want, tt.redirect)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct{ name, toml, want string }{
		{"unknown key", "databse = \"x\"\n", `unknown key "databse"`},
		{"bad toml", "name = \n", "expected value but found"},
		{"bad format", "domain_format = \"{name}.localhost\"\n", `domain format "{name}.localhost": unknown field {name}`},
		{"https on", "https = \"on\"\n", `https = "on": use https = "off" or a list of addresses`},
		{"https empty", "https = []\n", `https = []: use https = "off"`},
		{"https number", "https = [443]\n", `https: 443 is not a string`},
		{"https_redirect text", "https_redirect = \"yes\"\n", `https_redirect`},
	}
	t.Run("--config names a missing file", func(t *testing.T) {
		_, err := sites.Load(sites.Options{Project: t.TempDir(), Config: "/nonexistent/siteplex.toml", Getenv: noEnv})
		if !sites.IsUsage(err) || err.Error() != "config file /nonexistent/siteplex.toml does not exist" {
			t.Errorf("err = %v", err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"siteplex.toml": tt.toml})
			_, err := sites.Load(sites.Options{Project: dir, Getenv: noEnv})
			if err == nil || !sites.IsUsage(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

// TestNoDatabaseWithoutDjangoNamesPython: a Django project whose
// interpreter cannot import Django (python3 on PATH is not the project's)
// says how to name the right one, next to the other ways out.
func TestNoDatabaseWithoutDjangoNamesPython(t *testing.T) {
	venv := filepath.Join(t.TempDir(), "venv")
	if out, err := exec.Command(testenv.Python, "-m", "venv", "--without-pip", venv).CombinedOutput(); err != nil {
		testenv.Missing(t, "python3 -m venv: %v %s", err, out)
	}
	dir := writeFiles(t, map[string]string{
		"manage.py":        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'proj.settings')\n",
		"proj/__init__.py": "",
		"proj/settings.py": "SECRET_KEY = 'x'\nDATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': 'dev.db'}}\n",
	})
	p, err := sites.Load(sites.Options{Project: dir, Python: filepath.Join(venv, "bin", "python"), Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.ResolveDB(context.Background(), nil)
	if !errors.Is(err, sites.ErrNoDatabase) {
		t.Fatalf("err = %v, want no database", err)
	}
	for _, want := range []string{"No module named 'django'", "--python PATH", "pass --db URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q:\n%s", want, err)
		}
	}
}
