package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// specInserts fill the three tables with docs/sites.md's example site (2, Ghana)
// plus a plain django_site row and a disabled site. They run on both
// engines.
var specInserts = []string{
	`INSERT INTO django_site (id, domain, name) VALUES (1, 'example.com', 'example.com'), (2, 'example.gh', 'Ghana'), (3, 'example.de', 'Germany')`,
	`INSERT INTO django_multisite_plus_site (site_id, real_domain, slug, is_enabled, last_updated_at, extra_uwsgi_ini) VALUES
	  (2, 'www.example.gh', 'gh', TRUE, CURRENT_TIMESTAMP, ''), (3, 'www.example.de', 'de', FALSE, CURRENT_TIMESTAMP, '')`,
	`INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES
	  ('gh.example-stage.eu', 2, NULL, TRUE), ('example.gh', 2, TRUE, TRUE), ('example.de', 3, TRUE, TRUE)`,
}

// specJSON is `siteplex sites --json` for specInserts with SITE_ID=2.
const specJSON = `[
  {
    "id": 1,
    "name": "example.com",
    "domain": "example.com",
    "slug": "example-com",
    "real_domain": null,
    "enabled": true,
    "aliases": [],
    "local_domain": "example-com.localhost",
    "forced": false,
    "problems": [],
    "source": "django_site"
  },
  {
    "id": 2,
    "name": "Ghana",
    "domain": "example.gh",
    "slug": "gh",
    "real_domain": "www.example.gh",
    "enabled": true,
    "aliases": [
      "example.gh",
      "gh.example-stage.eu"
    ],
    "local_domain": "gh.localhost",
    "forced": true,
    "problems": [],
    "source": "django_site"
  },
  {
    "id": 3,
    "name": "Germany",
    "domain": "example.de",
    "slug": "de",
    "real_domain": "www.example.de",
    "enabled": false,
    "aliases": [
      "example.de"
    ],
    "local_domain": "de.localhost",
    "forced": false,
    "problems": [],
    "source": "django_site"
  }
]
`

// specTable is `siteplex sites` for the same data.
const specTable = `   ID  SLUG         NAME         DOMAIN       REAL            LOCAL                  ENABLED  ALIASES                         PROBLEMS
   1   example-com  example.com  example.com  –               example-com.localhost  yes      –                               –
★  2   gh           Ghana        example.gh   www.example.gh  gh.localhost           yes      example.gh,gh.example-stage.eu  –
   3   de           Germany      example.de   www.example.de  de.localhost           no       example.de                      –
`

// sitesProject makes a Django project folder with a SQLite db.sqlite3
// built from stmts and an env file forcing SITE_ID=2.
func sitesProject(t *testing.T, stmts ...string) string {
	t.Helper()
	dir := t.TempDir()
	testenv.DjangoSQLite(t, filepath.Join(dir, "db.sqlite3"), stmts...)
	writeFile(t, filepath.Join(dir, "manage.py"), "")
	writeFile(t, filepath.Join(dir, ".env-local"), "SITE_ID=2\n")
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSitesFlags(t *testing.T) {
	tests := []struct {
		args []string
		json bool
	}{
		{[]string{}, false},
		{[]string{"--json"}, true},
		{[]string{"--json=false"}, false},
	}
	for _, tt := range tests {
		f := newFactory(&IOStreams{Out: &bytes.Buffer{}, Err: &bytes.Buffer{}})
		var got *sitesOptions
		cmd := newCmdSitesRun(f, func(_ context.Context, o *sitesOptions) error { got = o; return nil })
		cmd.SetArgs(tt.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if got == nil || got.JSON != tt.json || got.IO != f.IO || got.Sites == nil {
			t.Errorf("%v: options %+v", tt.args, got)
		}
	}
}

func TestSitesFlagParsing(t *testing.T) {
	dir := sitesProject(t, specInserts...)
	tests := []struct {
		args       []string
		code       int
		stdout     string // substring
		stderr     string // exact
		stderrPart string // substring
	}{
		{args: []string{"sites", "--help"}, code: 0, stdout: "siteplex sites --json"},
		{args: []string{"sites", "--bogus"}, code: 2, stderr: "siteplex: unknown flag: --bogus\nRun 'siteplex --help' for usage.\n"},
		{args: []string{"sites", "extra"}, code: 2, stderrPart: `siteplex: unknown command "extra" for "siteplex sites"`},
		{args: []string{"ls", "--json"}, code: 0, stdout: `"slug": "gh"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, errOut, code := runCLI(t, dir, nil, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) ||
				(tt.stderr != "" && errOut != tt.stderr) || !strings.Contains(errOut, tt.stderrPart) {
				t.Errorf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tt.code, out, errOut)
			}
		})
	}
}

func TestSitesCLI(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dir := sitesProject(t, specInserts...)
			if engine == "postgres" {
				pg := testenv.StartPostgres(t)
				u := pg.DjangoDB(t, "cli_sites", specInserts...)
				os.Remove(filepath.Join(dir, "db.sqlite3"))
				writeFile(t, filepath.Join(dir, ".env-local"), "SITE_ID=2\nDATABASE_URL="+u+"\n")
			}
			out, errOut, code := runCLI(t, dir, nil, "sites", "--json")
			if code != 0 || errOut != "" {
				t.Fatalf("sites --json: exit %d, stderr %q", code, errOut)
			}
			if out != specJSON {
				t.Errorf("sites --json:\n%s\nwant:\n%s", out, specJSON)
			}
			var generic []map[string]any
			if err := json.Unmarshal([]byte(out), &generic); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			out, errOut, code = runCLI(t, dir, nil, "sites")
			if code != 0 || !strings.HasPrefix(errOut, "siteplex: database ") || strings.Count(errOut, "\n") != 1 || out != specTable {
				t.Errorf("sites: exit %d, stderr %q\n%s\nwant:\n%s", code, errOut, out, specTable)
			}
		})
	}
}

func TestSitesCLIProblemsAndControlCharacters(t *testing.T) {
	dir := sitesProject(t,
		`INSERT INTO django_site (id, domain, name) VALUES (5, 'evil.example`+"\n"+`127.0.0.1 bank.example', 'Inj`+"\x1b[31m"+`ected`+"\u009b"+`2J')`)
	out, _, code := runCLI(t, dir, nil, "sites")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if strings.ContainsAny(out, "\x1b\u009b") || strings.Count(out, "\n") != 2 {
		t.Errorf("a control character reached the terminal:\n%q", out)
	}
	for _, want := range []string{`evil.example\n127.0.0.1 bank.example`, `Inj\x1b[31mected\u009b2J`, `invalid domain: domain "evil.example\n127.0.0.1 bank.example" contains a control character`} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = runCLI(t, dir, nil, "sites", "--json")
	var list []struct {
		Domain   string   `json:"domain"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || len(list[0].Problems) != 1 ||
		list[0].Domain != "evil.example\n127.0.0.1 bank.example" {
		t.Errorf("JSON: %v %+v\n%s", err, list, out)
	}
}

func TestSitesCLIEmpty(t *testing.T) {
	dir := sitesProject(t)
	out, errOut, code := runCLI(t, dir, nil, "sites")
	if code != 0 || out != "no sites\n" || !strings.HasPrefix(errOut, "siteplex: database sqlite db.sqlite3 (from db.sqlite3)") {
		t.Errorf("sites: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = runCLI(t, dir, nil, "sites", "--json")
	if code != 0 || out != "[]\n" {
		t.Errorf("sites --json: exit %d, stdout %q", code, out)
	}
}

func TestSitesCLIConfigOnly(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "siteplex.toml"), `name = "tenants"
domain_format = "{slug}.tenants.localhost"

[sites.acme]
id = 1
domain = "acme.example"
name = "ACME"
env = { DJANGO_SETTINGS_MODULE = "settings.acme" }

[sites.globex]
id = 2
domain = "globex.example"
aliases = ["www.globex.example"]
`)
	out, errOut, code := runCLI(t, dir, nil, "sites", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `[{"id":1,"name":"ACME","domain":"acme.example","slug":"acme","real_domain":null,"enabled":true,"aliases":[],"local_domain":"acme.tenants.localhost","forced":false,"problems":[],"source":"config"},` +
		`{"id":2,"name":"globex.example","domain":"globex.example","slug":"globex","real_domain":null,"enabled":true,"aliases":["www.globex.example"],"local_domain":"globex.tenants.localhost","forced":false,"problems":[],"source":"config"}]`
	if got := compact(t, out); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// compact removes the insignificant whitespace of JSON text, keeping the
// field order.
func compact(t *testing.T, s string) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, []byte(s)); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return buf.String()
}

func TestSitesCLIErrors(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	garbage := sitesProject(t, specInserts...)
	writeFile(t, filepath.Join(garbage, ".env-local"), "SITE_ID=2\nthis line is garbage\nSECRET_KEY=abc\n")
	empty := t.TempDir()
	// A project without manage.py (Divio's marker) and without a database.
	divio := t.TempDir()
	writeFile(t, filepath.Join(divio, ".divio", "config.json"), "{}\n")

	tests := []struct {
		name   string
		dir    string
		env    map[string]string
		args   []string
		code   int
		stderr string
		stdout string // substring
	}{
		{name: "connection refused", dir: empty, args: []string{"sites", "--db", fmt.Sprintf("postgres://app:hunter2@127.0.0.1:%d/app", port)}, code: 1,
			stderr: fmt.Sprintf("siteplex: cannot connect to PostgreSQL at 127.0.0.1:%d (from --db): connection refused; is the server running? "+
				"Point siteplex elsewhere with --db URL or DATABASE_URL in the env file\n", port)},
		{name: "refused, from the process environment", dir: divio,
			env:  map[string]string{"DATABASE_URL": fmt.Sprintf("postgres://app:hunter2@127.0.0.1:%d/app", port)},
			args: []string{"sites"}, code: 1,
			stderr: fmt.Sprintf("siteplex: cannot connect to PostgreSQL at 127.0.0.1:%d (from DATABASE_URL): connection refused; is the server running? "+
				"Point siteplex elsewhere with --db URL or DATABASE_URL in the env file\n", port)},
		{name: "malformed URL", dir: empty, args: []string{"sites", "--db", "postgres://app:hunter2@db:port/app"}, code: 2,
			stderr: "siteplex: --db: database URL postgres://app:xxxxx@db:port/app: port \"port\" is not a number from 1 to 65535\n"},
		{name: "unknown scheme in the env file", dir: func() string {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, ".env"), "DATABASE_URL=couchdb://app:hunter2@db/app\n")
			return d
		}(), args: []string{"sites"}, code: 2,
			stderr: "siteplex: DATABASE_URL in .env: database URL scheme \"couchdb\" is unknown: use postgres://, mysql:// or sqlite://\n"},
		{name: "unknown domain format field", dir: garbage, args: []string{"sites", "--domain-format", "{name}.localhost"}, code: 2,
			stderr: "siteplex: domain format \"{name}.localhost\": unknown field {name} (use {slug}, {id}, {schema}, {} or {0})\n"},
		{name: "SQLite file missing", dir: empty, args: []string{"sites", "--db", "sqlite:///data/db.sqlite3"}, code: 1,
			stderr: "siteplex: SQLite database " + filepath.Join(empty, "data", "db.sqlite3") + " does not exist (from --db): run `manage.py migrate`, or point siteplex at another database with --db\n"},
		{name: "no database at all", dir: divio, args: []string{"sites"}, code: 1,
			stderr: "siteplex: no database found in " + divio + ": pass --db URL, set DATABASE_URL in " + filepath.Join(divio, ".env-local") + ", or declare sites in siteplex.toml\n"},
		{name: "not a project", dir: empty, args: []string{"sites"}, code: 1,
			stderr: "siteplex: no manage.py in " + empty + " or above: run siteplex in your project folder or pass --project DIR\n"},
		{name: "garbage lines in the env file", dir: garbage, args: []string{"sites", "--json"}, code: 0,
			stderr: "siteplex: warning: " + filepath.Join(garbage, ".env-local") + ":2: skipped a line that is not KEY=VALUE\n",
			stdout: `"forced": true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tt.dir, tt.env, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if errOut != tt.stderr {
				t.Errorf("stderr\n got  %q\n want %q", errOut, tt.stderr)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, out)
			}
			for _, secret := range []string{"hunter2", "goroutine", "panic"} {
				if strings.Contains(out+errOut, secret) {
					t.Errorf("output contains %q", secret)
				}
			}
		})
	}
}

// TestSitesTableShowsRunningEngine: with an engine running for the project,
// the table adds each site's process state and requests (docs/engine.md); the
// JSON contract stays as it is.
func TestSitesTableShowsRunningEngine(t *testing.T) {
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	sp := startServe(t, bin, dir)
	if code, b := httpGet(t, sp.addr, "two.localhost", "/whoami"); code != 200 {
		t.Fatalf("two.localhost: %d %s", code, b)
	}
	out, err := exec.Command(bin, "sites", "--project", dir).Output()
	if err != nil {
		t.Fatalf("siteplex sites: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "STATE") || !strings.Contains(lines[0], "REQ") || !strings.HasSuffix(lines[0], "URL") {
		t.Fatalf("table without engine columns:\n%s", out)
	}
	port := sp.addr[strings.LastIndexByte(sp.addr, ':')+1:]
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if url := "http://" + f[1] + ".localhost:" + port + "/"; f[len(f)-1] != url {
			t.Errorf("%s: %q, want the URL %s", f[1], l, url)
		}
		switch f[1] {
		case "one":
			if f[len(f)-4] != "stopped" || f[len(f)-2] != "0" {
				t.Errorf("one: %q, want stopped with 0 requests", l)
			}
		case "two":
			if f[len(f)-4] != "running" || f[len(f)-2] != "1" {
				t.Errorf("two: %q, want running with 1 request", l)
			}
		}
	}
	js, err := exec.Command(bin, "sites", "--json", "--project", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(js), "running") {
		t.Errorf("--json changed with an engine running:\n%s", js)
	}
}
