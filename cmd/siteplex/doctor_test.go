package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/siteplex/siteplex/internal/testenv"
)

// doctorNames is the order of the checks in `doctor --json` (a contract).
var doctorNames = []string{"project", "config", "env_file", "database", "django_settings", "site_id", "allowed_hosts", "frameworks", "overlay", "python", "proxy_port", "https_port", "hosts_file", "docker", "localhost_resolution",
	"https_ca", "https_ca_expiry", "https_trust"}

// deadDockerHost returns a DOCKER_HOST whose socket exists but has no
// listener.
func deadDockerHost(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	return "unix://" + sock
}

type doctorJSON struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name, Status, Detail, Fix string
	} `json:"checks"`
}

// parseDoctorJSON checks the exact shape: {"ok", "checks": [{"name",
// "status", "detail", "fix"}]} with every check, in order.
func parseDoctorJSON(t *testing.T, out string) (doctorJSON, map[string]string) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	var top []string
	for k := range raw {
		top = append(top, k)
	}
	sort.Strings(top)
	if !reflect.DeepEqual(top, []string{"checks", "ok"}) {
		t.Errorf("top-level keys %v, want [checks ok]", top)
	}
	var checks []map[string]any
	if err := json.Unmarshal(raw["checks"], &checks); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range checks {
		var keys []string
		for k, v := range c {
			keys = append(keys, k)
			if _, isString := v.(string); !isString {
				t.Errorf("check %v: %s is %T, want a string", c["name"], k, v)
			}
		}
		sort.Strings(keys)
		if !reflect.DeepEqual(keys, []string{"detail", "fix", "name", "status"}) {
			t.Errorf("check %v has keys %v", c["name"], keys)
		}
		switch c["status"] {
		case "ok", "warn", "fail":
		default:
			t.Errorf("check %v: status %v", c["name"], c["status"])
		}
		names = append(names, fmt.Sprint(c["name"]))
	}
	if !reflect.DeepEqual(names, doctorNames) {
		t.Errorf("checks %v, want %v", names, doctorNames)
	}
	var rep doctorJSON
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	status := map[string]string{}
	for _, c := range rep.Checks {
		status[c.Name] = c.Status
	}
	return rep, status
}

// healthyProject is a migrated Django project whose .venv/bin/python has
// Django, plus a writable temp hosts file and a free proxy address.
func healthyProject(t *testing.T) (root string, args []string) {
	t.Helper()
	root = domainsProject(t)
	if err := os.MkdirAll(filepath.Join(root, ".venv", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(testenv.Python, filepath.Join(root, ".venv", "bin", "python")); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return root, []string{"--project", root, "--hosts-file", hosts, "doctor", "--listen", fmt.Sprintf("127.0.0.1:%d", port)}
}

func TestDoctorCLIHealthy(t *testing.T) {
	_, args := healthyProject(t)
	env := map[string]string{"DOCKER_HOST": deadDockerHost(t)}
	r := runSiteplexCLI(t, env, append(args, "--json")...)
	rep, status := parseDoctorJSON(t, r.out)
	if r.code != 0 || !rep.OK {
		t.Fatalf("exit %d, ok %v, want 0 and true:\n%s%s", r.code, rep.OK, r.out, r.err)
	}
	for _, name := range []string{"project", "config", "env_file", "database", "python", "proxy_port", "https_port", "hosts_file"} {
		if status[name] != "ok" {
			t.Errorf("%s: %s, want ok", name, status[name])
		}
	}
	// No compose file: Docker is optional, so an unreachable engine warns.
	if status["docker"] != "warn" {
		t.Errorf("docker: %s, want warn", status["docker"])
	}
	for _, c := range rep.Checks {
		if c.Name == "database" && !strings.Contains(c.Detail, "3 sites") {
			t.Errorf("database detail %q", c.Detail)
		}
		if c.Name == "localhost_resolution" && !strings.Contains(c.Detail, "gh.localhost") {
			t.Errorf("resolution should check the sites' local domains: %q", c.Detail)
		}
	}

	text := runSiteplexCLI(t, env, args...)
	if text.code != 0 || !strings.Contains(text.out, "ok    project") || !strings.Contains(text.out, "All checks passed") {
		t.Errorf("text output, exit %d:\n%s", text.code, text.out)
	}
}

func TestDoctorCLIFailing(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "docker-compose.yml"), []byte("services: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	env := map[string]string{"DOCKER_HOST": deadDockerHost(t)}
	args := []string{"--project", empty, "--db", fmt.Sprintf("postgres://u@127.0.0.1:%d/db", closed),
		"--hosts-file", filepath.Join(empty, "no-hosts"), "doctor", "--listen", l.Addr().String()}
	r := runSiteplexCLI(t, env, append(args, "--json")...)
	rep, status := parseDoctorJSON(t, r.out)
	if r.code != 1 || rep.OK {
		t.Fatalf("exit %d, ok %v, want 1 and false:\n%s%s", r.code, rep.OK, r.out, r.err)
	}
	for name, want := range map[string]string{
		"project": "fail", "config": "ok", "env_file": "ok", "database": "fail", "python": "fail",
		"proxy_port": "fail", "hosts_file": "fail", "docker": "fail",
	} {
		if status[name] != want {
			t.Errorf("%s: %s, want %s", name, status[name], want)
		}
	}
	for _, c := range rep.Checks {
		if c.Status == "fail" && c.Fix == "" {
			t.Errorf("%s failed without a fix: %q", c.Name, c.Detail)
		}
	}

	text := runSiteplexCLI(t, env, args...)
	for _, want := range []string{"FAIL  project", "fix: run siteplex in the Django project's folder", "FAIL  database", "connection refused",
		"Docker is not reachable at unix://", "checks failed"} {
		if !strings.Contains(text.out, want) {
			t.Errorf("text output lacks %q:\n%s", want, text.out)
		}
	}
	if text.code != 1 {
		t.Errorf("exit %d, want 1", text.code)
	}
}

// A broken env file or config is reported by its check; the rest still runs.
func TestDoctorCLIBrokenFiles(t *testing.T) {
	root, args := healthyProject(t)
	env := map[string]string{"DOCKER_HOST": deadDockerHost(t)}
	t.Run("env file is a folder", func(t *testing.T) {
		r := runSiteplexCLI(t, env, append([]string{"--env-file", t.TempDir()}, append(args, "--json")...)...)
		_, status := parseDoctorJSON(t, r.out)
		if r.code != 1 || status["env_file"] != "fail" || status["database"] != "ok" || status["python"] != "ok" {
			t.Errorf("exit %d, statuses %v\n%s", r.code, status, r.err)
		}
	})
	t.Run("garbage line warns", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(root, ".env-local"), []byte("SITE_ID=1\nnot an assignment\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(root, ".env-local"))
		r := runSiteplexCLI(t, env, append(args, "--json")...)
		_, status := parseDoctorJSON(t, r.out)
		if r.code != 0 || status["env_file"] != "warn" {
			t.Errorf("exit %d, statuses %v", r.code, status)
		}
	})
	t.Run("bad siteplex.toml", func(t *testing.T) {
		if err := os.WriteFile(filepath.Join(root, "siteplex.toml"), []byte("domain_format = '{nope}'\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(filepath.Join(root, "siteplex.toml"))
		r := runSiteplexCLI(t, env, append(args, "--json")...)
		rep, status := parseDoctorJSON(t, r.out)
		if r.code != 1 || status["config"] != "fail" || status["database"] != "ok" {
			t.Errorf("exit %d, statuses %v", r.code, status)
		}
		for _, c := range rep.Checks {
			if c.Name == "config" && !strings.Contains(c.Detail, "{nope}") {
				t.Errorf("config detail %q", c.Detail)
			}
		}
	})
}

func TestDoctorCLIFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"doctor", "extra"}, "unknown command"},
		{[]string{"doctor", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"doctor", "--json=maybe"}, "invalid argument"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runSiteplexCLI(t, nil, tt.args...)
			if r.code != 2 || !strings.Contains(r.err, tt.want) || r.out != "" {
				t.Errorf("exit %d (want 2), stdout %q, stderr %q (want %q)", r.code, r.out, r.err, tt.want)
			}
		})
	}
}

// TestDoctorComposeHostDockerDown: DATABASE_URL names a compose host and
// Docker is off: the database check fails with the fix to start Docker
// (naming the host), not to fix settings that are fine.
func TestDoctorComposeHostDockerDown(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"manage.py":          "",
		".env-local":         "DATABASE_URL=postgres://postgres@database_default:5432/db\n",
		"docker-compose.yml": "services:\n  database_default:\n    image: postgres:15\n",
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dead := deadDockerHost(t)
	t.Setenv("DOCKER_HOST", dead) // the Docker client reads the process environment
	env := map[string]string{"DOCKER_HOST": dead, "XDG_STATE_HOME": t.TempDir()}
	r := runSiteplexCLI(t, env, "--project", dir, "doctor", "--json")
	rep, status := parseDoctorJSON(t, r.out)
	if status["database"] != "fail" {
		t.Fatalf("database: %s, want fail\n%s", status["database"], r.out)
	}
	for _, c := range rep.Checks {
		if c.Name != "database" {
			continue
		}
		if !strings.Contains(c.Detail, `names host "database_default"`) || !strings.Contains(c.Detail, "Docker is not reachable") {
			t.Errorf("detail %q", c.Detail)
		}
		if !strings.Contains(c.Fix, "start Docker") || !strings.Contains(c.Fix, "DOCKER_HOST") || !strings.Contains(c.Fix, `"database_default"`) ||
			strings.Contains(c.Fix, "django_settings") {
			t.Errorf("fix %q: want to start Docker or set DOCKER_HOST for database_default", c.Fix)
		}
	}
}
