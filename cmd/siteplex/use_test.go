package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siteplex/siteplex/devproxy"
)

// useProject writes a project with three declared sites (no database
// needed): one (1), two (2) and gh (3, example.gh). command, when not
// empty, is the [process] command.
func useProject(t *testing.T, dir, command string) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	toml := `[sites.one]
id = 1
domain = "one.example"

[sites.two]
id = 2
domain = "two.example"
name = "Two"

[sites.gh]
id = 3
domain = "example.gh"
name = "Ghana"
`
	if command != "" {
		toml = "[process]\ncommand = " + command + "\n\n" + toml
	}
	if err := os.WriteFile(filepath.Join(dir, "siteplex.toml"), []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestUseEditsEnvFile(t *testing.T) {
	tests := []struct {
		name     string
		file     string // env file name; "" = none exists
		before   string
		mode     os.FileMode
		args     []string
		after    string // the env file afterwards ("" with file "" = not created)
		wantFile string // the file that must hold `after` (default file, else .env-local)
		code     int
		stdout   string
		stderr   string
	}{
		{name: "missing file is created as .env-local", args: []string{"use", "two"},
			after: "SITE_ID=2\n", wantFile: ".env-local", stdout: "SITE_ID=2: 2 two (Two, two.example), written to .env-local"},
		{name: ".env is used when it is the only one", file: ".env", before: "DEBUG=True\n", args: []string{"use", "3"},
			after: "DEBUG=True\nSITE_ID=3\n", stdout: "written to .env"},
		{name: "comments, export, quotes, CRLF, no final newline", file: ".env-local",
			before: "# local settings\r\n\r\nexport SITE_ID=\"1\"  # forced\r\nDJANGO_SETTINGS_MODULE='settings.local'\r\nDEBUG=True",
			args:   []string{"use", "example.gh"},
			after:  "# local settings\r\n\r\nexport SITE_ID=\"3\"  # forced\r\nDJANGO_SETTINGS_MODULE='settings.local'\r\nDEBUG=True",
			stdout: "SITE_ID=3: 3 gh (Ghana, example.gh)"},
		{name: "duplicates: first replaced, later removed, said so", file: ".env-local",
			before: "SITE_ID=1\nA=1\nexport SITE_ID=2\nSITE_ID=2\n", args: []string{"use", "gh"},
			after: "SITE_ID=3\nA=1\n", stderr: ".env-local had 2 more SITE_ID line(s); removed them"},
		{name: "same site again writes nothing new", file: ".env-local", before: "SITE_ID=2\n", args: []string{"use", "two"},
			after: "SITE_ID=2\n", stdout: "already in .env-local"},
		{name: "mode kept", file: ".env-local", before: "SECRET=x\n", mode: 0o600, args: []string{"use", "one"},
			after: "SECRET=x\nSITE_ID=1\n"},
		{name: "unknown site exits 2 with the closest matches", file: ".env-local", before: "SITE_ID=1\n",
			args: []string{"use", "tow"}, after: "SITE_ID=1\n", code: 2, stderr: `unknown site "tow"; closest: 2 two`},
		{name: "clear", file: ".env-local", before: "A=1\nSITE_ID=2\r\nB=2", args: []string{"use", "--clear"},
			after: "A=1\nB=2", stdout: "removed SITE_ID from .env-local"},
		{name: "clear without SITE_ID", file: ".env-local", before: "A=1\n", args: []string{"use", "--clear"},
			after: "A=1\n", stdout: "nothing to clear"},
		{name: "clear with no file creates none", args: []string{"use", "--clear"}, stdout: "nothing to clear"},
		{name: "SITE and --clear together", file: ".env-local", before: "SITE_ID=1\n", args: []string{"use", "two", "--clear"},
			after: "SITE_ID=1\n", code: 2, stderr: "not both"},
		{name: "show the forced site", file: ".env-local", before: "SITE_ID=3\n", args: []string{"use"},
			after: "SITE_ID=3\n", stdout: "★ 3 gh (Ghana, example.gh)  (SITE_ID in .env-local)"},
		{name: "show none", args: []string{"use"}, stdout: "no site is forced"},
		{name: "show an id no site has", file: ".env-local", before: "SITE_ID=9\n", args: []string{"use"},
			after: "SITE_ID=9\n", stdout: "SITE_ID=9 (in .env-local)", stderr: "no site has id 9"},
		{name: "--env-file", file: "custom.env", before: "X=1\n", args: []string{"use", "two", "--env-file", "custom.env"},
			after: "X=1\nSITE_ID=2\n"},
		// Issue 15: SITE_ID= inside another variable's quoted value was
		// rewritten by use and deleted by --clear; a BOM was dropped.
		{name: "SITE_ID= inside a certificate is not touched", file: ".env-local",
			before: "CERT=\"-----BEGIN CERTIFICATE-----\nSITE_ID=9\n-----END CERTIFICATE-----\"\nSITE_ID=1\n", args: []string{"use", "two"},
			after: "CERT=\"-----BEGIN CERTIFICATE-----\nSITE_ID=9\n-----END CERTIFICATE-----\"\nSITE_ID=2\n"},
		{name: "clear leaves SITE_ID= inside a quoted value", file: ".env-local",
			before: "KEY='a\nSITE_ID=9\n'\nSITE_ID=1\n", args: []string{"use", "--clear"},
			after: "KEY='a\nSITE_ID=9\n'\n", stdout: "removed SITE_ID"},
		{name: "clear keeps a BOM", file: ".env-local", before: "\ufeffSITE_ID=1\r\nA=1\r\n", args: []string{"use", "--clear"},
			after: "\ufeffA=1\r\n"},
		{name: "export with a tab", file: ".env-local", before: "export\tSITE_ID=1\n", args: []string{"use", "gh"},
			after: "export\tSITE_ID=3\n"},
		{name: "a line with an unterminated quote is kept as it is", file: ".env-local",
			before: "A=\"x\n", args: []string{"use", "gh"}, after: "A=\"x\nSITE_ID=3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := useProject(t, "", "")
			if tt.file != "" {
				mode := tt.mode
				if mode == 0 {
					mode = 0o644
				}
				if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.before), mode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(filepath.Join(dir, tt.file), mode)
			}
			stdout, stderr, code := runCLI(t, dir, nil, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) {
				t.Errorf("stdout %q lacks %q", stdout, tt.stdout)
			}
			if !strings.Contains(stderr, tt.stderr) {
				t.Errorf("stderr %q lacks %q", stderr, tt.stderr)
			}
			want := tt.wantFile
			if want == "" {
				want = tt.file
			}
			if want == "" {
				if _, err := os.Stat(filepath.Join(dir, ".env-local")); !os.IsNotExist(err) {
					t.Errorf(".env-local was created")
				}
				return
			}
			b, err := os.ReadFile(filepath.Join(dir, want))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.after {
				t.Errorf("%s:\n got %q\nwant %q", want, b, tt.after)
			}
			if tt.mode != 0 {
				if st, _ := os.Stat(filepath.Join(dir, want)); st.Mode().Perm() != tt.mode {
					t.Errorf("mode %v, want %v", st.Mode().Perm(), tt.mode)
				}
			}
			if tt.file == ".env" {
				if _, err := os.Stat(filepath.Join(dir, ".env-local")); !os.IsNotExist(err) {
					t.Errorf(".env-local was created next to .env")
				}
			}
		})
	}
}

func TestUseJSON(t *testing.T) {
	dir := useProject(t, "", "")
	stdout, stderr, code := runCLI(t, dir, nil, "use", "gh", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res struct {
		SiteID int64 `json:"site_id"`
		Site   struct {
			Slug   string `json:"slug"`
			Forced bool   `json:"forced"`
		} `json:"site"`
		EnvFile string `json:"env_file"`
		Changed bool   `json:"changed"`
		Engine  bool   `json:"engine"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if res.SiteID != 3 || res.Site.Slug != "gh" || !res.Site.Forced || !res.Changed || res.Engine ||
		res.EnvFile != filepath.Join(dir, ".env-local") {
		t.Errorf("json = %+v", res)
	}
	stdout, _, _ = runCLI(t, dir, nil, "use", "--json")
	if !strings.Contains(stdout, `"site_id": 3`) || !strings.Contains(stdout, `"slug": "gh"`) {
		t.Errorf("use --json: %s", stdout)
	}
}

func TestUseWithoutDatabase(t *testing.T) {
	dir := t.TempDir()
	// The database named is down: an id can still be forced, a slug cannot.
	os.WriteFile(filepath.Join(dir, "manage.py"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, ".env-local"), []byte("DATABASE_URL=postgres://postgres@127.0.0.1:1/db\n"), 0o644)
	stdout, stderr, code := runCLI(t, dir, nil, "use", "5")
	if code != 0 || !strings.Contains(stderr, "forcing SITE_ID=5 unchecked") || !strings.Contains(stdout, "SITE_ID=5") {
		t.Fatalf("use 5: exit %d\n%s\n%s", code, stdout, stderr)
	}
	b, _ := os.ReadFile(filepath.Join(dir, ".env-local"))
	if string(b) != "DATABASE_URL=postgres://postgres@127.0.0.1:1/db\nSITE_ID=5\n" {
		t.Errorf(".env-local = %q", b)
	}
	_, stderr, code = runCLI(t, dir, nil, "use", "gh")
	if code != 1 || !strings.Contains(stderr, "give its numeric id") {
		t.Errorf("use gh: exit %d: %s", code, stderr)
	}
}

func TestUseComposeHostWithoutDocker(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "manage.py"), nil, 0o644)
	os.WriteFile(filepath.Join(dir, ".env-local"), []byte("DATABASE_URL=postgres://postgres@database_default:5432/db\n"), 0o644)
	env := map[string]string{"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
	t.Setenv("DOCKER_HOST", env["DOCKER_HOST"]) // the Docker client reads the process environment
	_, stderr, code := runCLI(t, dir, env, "use", "gh")
	if code != 1 || !strings.Contains(stderr, "Docker is not reachable at unix:///nonexistent/docker.sock") {
		t.Errorf("exit %d: %s", code, stderr)
	}
	// Everything that does not need the database still works.
	if _, stderr, code := runCLI(t, dir, env, "use", "4"); code != 0 {
		t.Errorf("use 4 without Docker: exit %d: %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, dir, env, "use", "--clear"); code != 0 {
		t.Errorf("use --clear without Docker: exit %d: %s", code, stderr)
	}
}

// loadLoop sends GET /whoami with Host localhost from several goroutines
// until stop, recording every answer.
type loadLoop struct {
	mu      sync.Mutex
	answers []loopAnswer
	stop    chan struct{}
	wg      sync.WaitGroup
}

type loopAnswer struct {
	start, end time.Time
	siteID     string
	err        string
}

func startLoop(addr string, workers int) *loadLoop {
	l := &loadLoop{stop: make(chan struct{})}
	client := &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: workers}, Timeout: 60 * time.Second}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				a := loopAnswer{start: time.Now()}
				req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/whoami", nil)
				req.Host = "localhost"
				resp, err := client.Do(req)
				if err != nil {
					a.err = err.Error()
				} else {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					var who struct {
						SiteID string `json:"site_id"`
					}
					if resp.StatusCode != 200 || json.Unmarshal(b, &who) != nil {
						a.err = fmt.Sprintf("%s: %.200s", resp.Status, b)
					}
					a.siteID = who.SiteID
				}
				a.end = time.Now()
				l.mu.Lock()
				l.answers = append(l.answers, a)
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *loadLoop) finish() []loopAnswer {
	close(l.stop)
	l.wg.Wait()
	sort.Slice(l.answers, func(i, j int) bool { return l.answers[i].start.Before(l.answers[j].start) })
	return l.answers
}

// runUse runs the built binary's `use` in dir and returns when it ends.
func runUse(t *testing.T, bin, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"use", "--project", dir}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DATABASE_URL=", "SITEPLEX_DATABASE_URL=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("siteplex use %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// engineTook is the engine call's duration `use` reports: "... (12ms)".
func engineTook(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "the running siteplex") {
			if i := strings.LastIndex(line, "("); i >= 0 {
				return strings.TrimSuffix(line[i+1:], ")")
			}
		}
	}
	return "?"
}

// engineStatus reads the engine's /api/status.
func engineStatus(t *testing.T, addr string) map[string]map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/api/status", nil)
	req.Host = "siteplex.localhost"
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Sites []map[string]any `json:"sites"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, s := range st.Sites {
		out[fmt.Sprint(s["slug"])] = s
	}
	return out
}

// useSwitch is one `siteplex use` run under load.
type useSwitch struct {
	out      string        // use's output
	took     time.Duration // use, end to end
	firstNew time.Duration // from use's start to the end of the first answer from the new site
	n        int           // requests answered during the run
}

// useUnderLoad runs `siteplex use site` in dir while workers request
// loops run against addr (from 300 ms before to settle after), and checks
// with switchReport that none failed and wantID answered after the switch.
func useUnderLoad(t *testing.T, bin, dir, addr, site, wantID string, workers int, settle time.Duration) useSwitch {
	t.Helper()
	loop := startLoop(addr, workers)
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	out := runUse(t, bin, dir, site)
	end := time.Now()
	time.Sleep(settle)
	firstNew, n := switchReport(t, loop.finish(), start, end, wantID)
	return useSwitch{out: out, took: end.Sub(start), firstNew: firstNew, n: n}
}

// switchReport checks a request loop across a `use`: no request failed,
// every request started after `use` returned got the new site. It returns
// how long after `use` started the first answer from the new site began
// and ended.
func switchReport(t *testing.T, answers []loopAnswer, useStart, useEnd time.Time, want string) (firstNew time.Duration, total int) {
	t.Helper()
	failed := 0
	firstNew = -1
	for _, a := range answers {
		if a.err != "" {
			failed++
			if failed <= 5 {
				t.Errorf("request failed: %s", a.err)
			}
			continue
		}
		if a.siteID == want && firstNew < 0 && !a.start.Before(useStart) {
			firstNew = a.end.Sub(useStart)
		}
		if a.start.After(useEnd) && a.siteID != want {
			t.Errorf("a request started %s after `use` returned got SITE_ID %s, want %s", a.start.Sub(useEnd), a.siteID, want)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed", failed, len(answers))
	}
	if firstNew < 0 {
		t.Errorf("no request got SITE_ID %s", want)
	}
	return firstNew, len(answers)
}

func TestUseSwitchesRunningEnginePerSite(t *testing.T) {
	bin := buildSiteplex(t)
	dir := useProject(t, worldReadableDir(t), `["`+bin+`", "demo-site", "--port", "{port}", "--site", "{slug}"]`)
	os.WriteFile(filepath.Join(dir, ".env-local"), []byte("# dev\nSITE_ID=1\n"), 0o644)
	sp := startServe(t, bin, dir, "--start", "all")
	// Both processes up before measuring the switch itself.
	for _, h := range []string{"one.localhost", "two.localhost", "gh.localhost"} {
		if code, b := httpGet(t, sp.addr, h, "/whoami"); code != 200 {
			t.Fatalf("%s: %d %s", h, code, b)
		}
	}
	before := engineStatus(t, sp.addr)

	u := useUnderLoad(t, bin, dir, sp.addr, "two", "2", 4, 300*time.Millisecond)
	if !strings.Contains(u.out, "switched: localhost serves SITE_ID=2") {
		t.Errorf("use did not report the switch:\n%s", u.out)
	}
	t.Logf("per-site switch: %d requests, 0 failed; `siteplex use` took %s end to end (the engine call: %s); first answer from the new site ended %s after `use` started",
		u.n, u.took.Round(time.Millisecond), engineTook(u.out), u.firstNew.Round(time.Millisecond))

	// No process was restarted.
	after := engineStatus(t, sp.addr)
	for slug, s := range before {
		if after[slug]["pid"] != s["pid"] || after[slug]["restarts"] != s["restarts"] {
			t.Errorf("site %s: pid/restarts %v/%v → %v/%v: a process was restarted", slug, s["pid"], s["restarts"], after[slug]["pid"], after[slug]["restarts"])
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, ".env-local"))
	if string(b) != "# dev\nSITE_ID=2\n" {
		t.Errorf(".env-local = %q", b)
	}

	// The switch itself, without starting the siteplex binary: the control
	// API call, then the first answer from the new site.
	ef, err := devproxy.ReadEngineFile(filepath.Join(dir, ".siteplex"))
	if err != nil {
		t.Fatal(err)
	}
	loop := startLoop(sp.addr, 4)
	time.Sleep(200 * time.Millisecond)
	callStart := time.Now()
	if err := devproxy.NewClient(ef).Use(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	callEnd := time.Now()
	time.Sleep(200 * time.Millisecond)
	firstNew, n := switchReport(t, loop.finish(), callStart, callEnd, "3")
	t.Logf("per-site switch through the control API: %d requests, 0 failed; the call took %s; first answer from the new site ended %s after the call started",
		n, callEnd.Sub(callStart).Round(time.Microsecond), firstNew.Round(time.Microsecond))

	// --clear: localhost shows the index.
	runUse(t, bin, dir, "--clear")
	if code, body := httpGet(t, sp.addr, "localhost", "/"); code == 200 && strings.Contains(string(body), `"site_id"`) {
		t.Errorf("after --clear localhost still reaches a site: %d %s", code, body)
	}
}

func TestUseSwitchesRunningEngineSingleMode(t *testing.T) {
	bin := buildSiteplex(t)
	// demo-site reports the SITE_ID of its environment: the forced one.
	dir := useProject(t, worldReadableDir(t), `["`+bin+`", "demo-site", "--port", "{port}"]`)
	os.WriteFile(filepath.Join(dir, ".env-local"), []byte("SITE_ID=1\n"), 0o644)
	sp := startServe(t, bin, dir, "--mode", "single")
	if code, b := httpGet(t, sp.addr, "localhost", "/whoami"); code != 200 || !strings.Contains(string(b), `"site_id":"1"`) {
		t.Fatalf("localhost before: %d %s", code, b)
	}

	u := useUnderLoad(t, bin, dir, sp.addr, "gh", "3", 4, 500*time.Millisecond)
	t.Logf("single-mode switch (process restarted): %d requests, 0 failed; `siteplex use` took %s end to end (the engine call: %s); first answer from the new SITE_ID ended %s after `use` started",
		u.n, u.took.Round(time.Millisecond), engineTook(u.out), u.firstNew.Round(time.Millisecond))
	// Every host now reaches the one process with the new SITE_ID.
	if code, b := httpGet(t, sp.addr, "two.localhost", "/whoami"); code != 200 || !strings.Contains(string(b), `"site_id":"3"`) {
		t.Errorf("two.localhost in single mode: %d %s", code, b)
	}
}
