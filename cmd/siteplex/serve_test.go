package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy"
	"github.com/siteplex/siteplex/internal/testenv"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		bad  bool
	}{
		{"/usr/bin/python3 manage.py runserver 127.0.0.1:{port} --noreload",
			[]string{testenv.Python, "manage.py", "runserver", "127.0.0.1:{port}", "--noreload"}, false},
		{`  sh -c 'echo $HOME; exit 1'  `, []string{"sh", "-c", "echo $HOME; exit 1"}, false},
		{`a "b c" d\ e "q\"x" ''`, []string{"a", "b c", "d e", `q"x`, ""}, false},
		{`x 'unclosed`, nil, true},
		{"   ", nil, true},
	}
	for _, tt := range tests {
		got, err := splitCommand(tt.in)
		if (err != nil) != tt.bad || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

// engineConfigFor parses args as serve's flags in a project whose
// siteplex.toml is toml, and returns the engine configuration. There is
// no local CA.
func engineConfigFor(t *testing.T, toml string, args ...string) (devproxy.Config, error) {
	t.Helper()
	return engineConfigEnv(t, map[string]string{"SITEPLEX_CAROOT": filepath.Join(t.TempDir(), "no-ca")}, toml, args...)
}

// engineConfigEnv is engineConfigFor with the environment env.
func engineConfigEnv(t *testing.T, env map[string]string, toml string, args ...string) (devproxy.Config, error) {
	t.Helper()
	dir := t.TempDir()
	if toml != "" {
		if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte(toml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := newFactory(&IOStreams{In: strings.NewReader(""), Out: io.Discard, Err: io.Discard})
	f.Opts.Cwd = dir
	f.Opts.Project = dir
	f.Opts.Getenv = func(k string) string { return env[k] }
	root := newRootCmd(f)
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.ParseFlags(args); err != nil {
		return devproxy.Config{}, err
	}
	return f.EngineConfig(context.Background())
}

func TestEngineConfigFlagsOverConfig(t *testing.T) {
	const toml = `listen = ["127.0.0.1:9000"]
mode = "single"
start = "all"
boot_timeout = "5s"
idle_timeout = "1m"
max_running = 3
[process]
command = ["python3", "x.py", "{port}"]
runner = "local"
`
	cfg, err := engineConfigFor(t, toml)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Listen, []string{"127.0.0.1:9000"}) || cfg.Mode != devproxy.Single || !cfg.StartAll ||
		cfg.BootTimeout != 5*time.Second || cfg.IdleTimeout != time.Minute || cfg.MaxRunning != 3 ||
		!reflect.DeepEqual(cfg.Command, []string{"python3", "x.py", "{port}"}) || !cfg.Watch {
		t.Errorf("from the config: %+v", cfg)
	}
	cfg, err = engineConfigFor(t, toml, "--listen", ":0", "--listen", "[::1]:0", "--mode", "per-site", "--start", "lazy",
		"--boot-timeout", "2m", "--idle-timeout", "0", "--max-running", "0", "--command", "./run 'a b' {port}", "--no-watch")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg.Listen, []string{":0", "[::1]:0"}) || cfg.Mode != devproxy.PerSite || cfg.StartAll ||
		cfg.BootTimeout != 2*time.Minute || cfg.IdleTimeout >= 0 || cfg.MaxRunning != 0 ||
		!reflect.DeepEqual(cfg.Command, []string{"./run", "a b", "{port}"}) || cfg.Watch {
		t.Errorf("flags over the config: %+v", cfg)
	}
	cfg, err = engineConfigFor(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != nil || cfg.Mode != devproxy.PerSite || cfg.BootTimeout != 60*time.Second || cfg.IdleTimeout != 15*time.Minute || cfg.Command != nil {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestServeUsageErrors(t *testing.T) {
	tests := [][]string{
		{"serve", "--mode", "many"},
		{"serve", "--start", "some"},
		{"serve", "--idle-timeout", "soon"},
		{"serve", "--max-running", "-1"},
		{"serve", "--command", "'unclosed"},
		{"serve", "--runner", "podman"},
		{"serve", "--listen", "localhost"},
		{"serve", "extra"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			_, stderr, code := runCLI(t, "", nil, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, stderr)
			}
		})
	}
}

var siteplexBin struct {
	once sync.Once
	path string
	err  error
}

// buildSiteplex builds the siteplex binary once per test run, into a
// folder every user may read (the port-80 test runs it as nobody).
func buildSiteplex(t testing.TB) string {
	t.Helper()
	siteplexBin.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			siteplexBin.err = err
			return
		}
		dir, err := os.MkdirTemp("", "siteplex-serve-test-")
		if err != nil {
			siteplexBin.err = err
			return
		}
		_ = os.Chmod(dir, 0o755)
		siteplexBin.path = filepath.Join(dir, "siteplex")
		out, err := exec.Command(goBin, "build", "-o", siteplexBin.path, ".").CombinedOutput()
		if err != nil {
			siteplexBin.err = errors.New(string(out))
		}
	})
	if siteplexBin.err != nil {
		if errors.Is(siteplexBin.err, exec.ErrNotFound) {
			testenv.Missing(t, "the go command is not on PATH: cannot build siteplex")
		}
		t.Fatalf("building siteplex: %v", siteplexBin.err)
	}
	return siteplexBin.path
}

// worldReadableDir makes a temp folder nobody can read too.
func worldReadableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "siteplex-serve-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// demoProject writes a project with two declared sites whose process is
// `siteplex demo-site`.
func demoProject(t *testing.T, bin string) string {
	t.Helper()
	dir := worldReadableDir(t)
	toml := `[process]
command = ["` + bin + `", "demo-site", "--port", "{port}", "--site", "{slug}", "--site-id", "{site_id}"]

[sites.one]
id = 1
domain = "one.example"

[sites.two]
id = 2
domain = "two.example"
`
	if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestServePort80RefusedAsNobody(t *testing.T) {
	testenv.NeedPrivilegedPort(t, 80)
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := testenv.AsNobody(ctx, t, bin,
		"serve", "--project", dir, "--listen", "127.0.0.1:80")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("serve as nobody on port 80: %v, want exit 1; stderr:\n%s", err, stderr.String())
	}
	msg := stderr.String()
	for _, want := range []string{
		"sudo setcap cap_net_bind_service=+ep $(which siteplex)",
		"net.ipv4.ip_unprivileged_port_start",
		"--listen 127.0.0.1:8080",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message lacks %q:\n%s", want, msg)
		}
	}
}

// serveProc is a running `siteplex serve`.
type serveProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *testenv.Buffer
}

// startServe runs the binary's serve in dir and waits for its listening line.
func startServe(t testing.TB, bin, dir string, args ...string) *serveProc {
	t.Helper()
	return startServeEnv(t, bin, dir, nil, args...)
}

// startServeEnv is startServe with more environment variables.
func startServeEnv(t testing.TB, bin, dir string, env []string, args ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--project", dir, "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "DATABASE_URL=", "SITEPLEX_DATABASE_URL="), env...)
	pr, pw := io.Pipe()
	sp := &serveProc{cmd: cmd, stderr: &testenv.Buffer{}}
	cmd.Stderr = io.MultiWriter(pw, sp.stderr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "siteplex: listening on "); ok {
				select {
				case found <- a:
				default:
				}
			}
		}
	}()
	select {
	case sp.addr = <-found:
	case <-time.After(30 * time.Second):
		t.Fatalf("no listening line; stderr:\n%s", sp.stderr.String())
	}
	return sp
}

func httpGet(t testing.TB, addr, host, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Host = host
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s %s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestServeEndToEndGracefulSIGTERM(t *testing.T) {
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	sp := startServe(t, bin, dir)

	code, b := httpGet(t, sp.addr, "two.localhost", "/whoami")
	var who struct {
		SiteID string `json:"site_id"`
		Host   string `json:"host"`
		PID    int    `json:"pid"`
	}
	if code != 200 || json.Unmarshal(b, &who) != nil || who.SiteID != "2" || who.Host != "two.localhost" {
		t.Fatalf("two.localhost: %d %s", code, b)
	}
	code, b = httpGet(t, sp.addr, "nowhere.example", "/")
	if code != 404 || strings.Contains(string(b), "one.localhost") || !strings.Contains(string(b), "siteplex.localhost") {
		t.Errorf("unknown host: %d %.200s; want a 404 that links to the index and names no site", code, b)
	}

	// engine.json is there, private, and its client works.
	state := filepath.Join(dir, ".siteplex")
	fi, err := os.Stat(filepath.Join(state, "engine.json"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("engine.json: %v %v", fi, err)
	}
	ef, err := devproxy.ReadEngineFile(state)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := devproxy.NewClient(ef)
	if err := c.Use(ctx, 1); err != nil {
		t.Fatal(err)
	}
	code, b = httpGet(t, sp.addr, "localhost", "/whoami")
	if code != 200 || !strings.Contains(string(b), `"site_id":"1"`) {
		t.Errorf("localhost after use 1: %d %s", code, b)
	}
	st, err := c.Status(ctx)
	if err != nil || st.ForcedSiteID != 1 || len(st.Sites) != 2 {
		t.Errorf("status: %+v %v", st, err)
	}

	if err := sp.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sp.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v; stderr:\n%s", err, sp.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not exit 20 s after SIGTERM; stderr:\n%s", sp.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(state, "engine.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("engine.json left behind: %v", err)
	}
	if err := syscall.Kill(who.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("site process %d still alive after serve exited: %v", who.PID, err)
	}
	if !strings.Contains(sp.stderr.String(), "siteplex: stopped") {
		t.Errorf("stderr:\n%s", sp.stderr.String())
	}
}

// copyDjango copies testdata/django to a temp folder, or skips loudly
// without Django.
func copyDjango(t *testing.T) string {
	t.Helper()
	testenv.NeedPython(t, "django")
	src, _ := filepath.Abs(filepath.Join("..", "..", "testdata", "django"))
	dst := worldReadableDir(t)
	testenv.CopyProject(t, src, dst)
	return dst
}

func TestServeDjangoEveryHostAndCookie(t *testing.T) {
	bin := buildSiteplex(t)
	root := copyDjango(t)
	sp := startServe(t, bin, root, "--command", "/usr/bin/python3 manage.py runserver 127.0.0.1:{port} --noreload")

	// The index (JSON) lists the sites with their local domains.
	req, _ := http.NewRequest(http.MethodGet, "http://"+sp.addr+"/", nil)
	req.Host = "siteplex.localhost"
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var idx devproxy.Index
	err = json.NewDecoder(resp.Body).Decode(&idx)
	resp.Body.Close()
	if err != nil || len(idx.Sites) < 3 {
		t.Fatalf("index: %v %+v", err, idx)
	}
	for _, s := range idx.Sites {
		if !s.Routed {
			continue
		}
		for _, h := range []string{s.Domain, s.LocalDomain, "cdn." + s.LocalDomain} {
			code, b := httpGet(t, sp.addr, h, "/whoami/")
			var w struct {
				SiteID int64  `json:"site_id"`
				Host   string `json:"host"`
			}
			if code != 200 || json.Unmarshal(b, &w) != nil || w.SiteID != s.ID || w.Host != h {
				t.Errorf("Host %s: %d %.200s (want SITE_ID %d)", h, code, b, s.ID)
			}
		}
	}
	// Cookie override on localhost.
	pick := idx.Sites[1]
	c := &http.Client{Transport: &http.Transport{Proxy: nil}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ = http.NewRequest(http.MethodGet, "http://"+sp.addr+"/whoami/?siteplex-site="+pick.Slug, nil)
	req.Host = "localhost"
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, "http://"+sp.addr+resp.Header.Get("Location"), nil)
	req.Host = "localhost"
	for _, ck := range resp.Cookies() {
		req.AddCookie(ck)
	}
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var w struct {
		SiteID int64 `json:"site_id"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(b, &w) != nil || w.SiteID != pick.ID {
		t.Errorf("cookie %s on localhost: %d %s", pick.Slug, resp.StatusCode, b)
	}
}

func TestServeSIGKILLLeavesNoSiteProcess(t *testing.T) {
	bin := buildSiteplex(t)
	dir := demoProject(t, bin)
	sp := startServe(t, bin, dir)
	var pids []int
	for _, h := range []string{"one.localhost", "two.localhost"} {
		code, b := httpGet(t, sp.addr, h, "/whoami")
		var who struct {
			PID int `json:"pid"`
		}
		if code != 200 || json.Unmarshal(b, &who) != nil || who.PID == 0 {
			t.Fatalf("%s: %d %s", h, code, b)
		}
		pids = append(pids, who.PID)
	}
	if err := sp.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sp.cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("site process %d alive 5 s after siteplex was SIGKILLed", pid)
		}
	}
	// The next start comes up cleanly over the leftovers (stale pid files,
	// a stale engine.json) and serves again.
	if _, err := devproxy.ReadEngineFile(filepath.Join(dir, ".siteplex")); !errors.Is(err, devproxy.ErrNoEngine) {
		t.Errorf("engine.json of the killed engine: %v, want ErrNoEngine", err)
	}
	sp2 := startServe(t, bin, dir)
	if code, _ := httpGet(t, sp2.addr, "one.localhost", "/whoami"); code != 200 {
		t.Errorf("after restart: %d", code)
	}
}

// TestNotAProjectFolder: serve, sites and use in a folder that is no
// project (no manage.py here or above, no siteplex.toml) exit 1 at once
// with what to do, and create nothing there; a siteplex.toml that declares
// sites, or --db, still works there.
func TestNotAProjectFolder(t *testing.T) {
	dir := t.TempDir()
	want := "siteplex: no manage.py in " + dir + " or above: run siteplex in your project folder or pass --project DIR\n"
	for _, args := range [][]string{{"serve", "--listen", "127.0.0.1:0"}, {"sites"}, {"sites", "--json"}, {"use", "2"}, {"hosts", "apply"}} {
		out, errOut, code := runCLI(t, dir, nil, args...)
		if code != 1 || errOut != want || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, errOut, want)
		}
	}
	_, errOut, code := runCLI(t, "", nil, "--project", dir, "sites")
	if want := "siteplex: no manage.py in " + dir + ": run siteplex"; code != 1 || !strings.HasPrefix(errOut, want) {
		t.Errorf("--project: exit %d, stderr %q", code, errOut)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the folder is no longer empty: %v", ents)
	}
	// Declared sites, or --db, make it a project siteplex can work on.
	if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte("[sites.shop]\ndomain = \"shop.example\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, dir, nil, "sites"); code != 0 || !strings.Contains(out, "shop.example") {
		t.Errorf("declared sites: exit %d\n%s%s", code, out, errOut)
	}
	other := t.TempDir()
	db := openSQLite(t, filepath.Join(other, "sites.sqlite3"))
	if _, err := db.Exec("CREATE TABLE django_site (id integer PRIMARY KEY, domain text, name text); INSERT INTO django_site VALUES (1, 'db.example', 'DB')"); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, other, nil, "--db", "sqlite:///sites.sqlite3", "sites"); code != 0 || !strings.Contains(out, "db.example") {
		t.Errorf("--db: exit %d\n%s%s", code, out, errOut)
	}
}
