package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/go-connections/nat"

	"github.com/siteplex/siteplex/compose"
	"github.com/siteplex/siteplex/compose/composetest"
	"github.com/siteplex/siteplex/internal/testenv"
)

// dockerProject starts a compose-style project for root on the test
// engine: a `web` container from the siteplex image (demo-site on
// 0.0.0.0:8000, published on 127.0.0.1:webPort, SITE_ID=1, root mounted at
// /app) on the network <project>_default. It returns the engine client.
func dockerProject(t *testing.T, root string) (d *compose.Docker, project string, webPort int) {
	t.Helper()
	testenv.StartDocker(t)
	d, err := compose.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	project = compose.ProjectName(root, func(string) string { return "" })
	netName := composetest.Network(t, d.API, project)
	webPort, _ = testenv.FreePort()
	composetest.Run(t, d.API, project+"-web-1", &container.Config{
		Image: composetest.WebImage(t, d.API),
		Env:   []string{"SITE_ID=1", "FROM_WEB=yes"},
		Cmd:   []string{"/siteplex", "demo-site", "--host", "0.0.0.0", "--port", "8000", "--site", "web"},
		Labels: map[string]string{compose.LabelProject: project, compose.LabelWorkingDir: root,
			compose.LabelService: "web", compose.LabelOneoff: "False"},
		ExposedPorts: nat.PortSet{"8000/tcp": {}},
	}, &container.HostConfig{
		Binds:        []string{root + ":/app"},
		PortBindings: nat.PortMap{"8000/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(webPort)}}},
	}, netName, "web")
	// Site containers the test's siteplex made, should it fail to. Only
	// this project's: CI runs every package's tests on one shared engine.
	t.Cleanup(func() {
		cs, _ := d.API.ContainerList(context.Background(), container.ListOptions{All: true,
			Filters: filters.NewArgs(filters.Arg("label", compose.LabelSiteplexProject+"="+filepath.Base(root)))})
		for _, c := range cs {
			d.API.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
		}
	})
	return d, project, webPort
}

// siteContainers lists the running site containers of siteplex project name.
func siteContainers(t *testing.T, d *compose.Docker, name string) []container.Summary {
	t.Helper()
	cs, err := d.API.ContainerList(context.Background(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", compose.LabelSiteplexProject+"="+name))})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// stopServe sends SIGTERM to serve and waits for it to exit.
func stopServe(t testing.TB, sp *serveProc) {
	t.Helper()
	sp.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { sp.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("serve did not exit after SIGTERM; stderr:\n%s", sp.stderr.String())
	}
}

func TestServeDockerRunnerPerSite(t *testing.T) {
	bin := buildSiteplex(t)
	root := worldReadableDir(t)
	d, _, _ := dockerProject(t, root)
	// The command runs in the container: its loopback address becomes 0.0.0.0.
	useProject(t, root, `["/siteplex", "demo-site", "--host", "127.0.0.1", "--port", "{port}", "--site", "{slug}"]`)
	name := filepath.Base(root)

	sp := startServe(t, bin, root, "--runner", "docker")
	for _, tc := range []struct{ host, id, slug string }{{"two.localhost", "2", "two"}, {"example.gh", "3", "gh"}} {
		code, b := httpGet(t, sp.addr, tc.host, "/whoami")
		if code != 200 || !strings.Contains(string(b), `"site_id":"`+tc.id+`"`) || !strings.Contains(string(b), `"site":"`+tc.slug+`"`) {
			t.Fatalf("%s: %d %s\nserve:\n%s", tc.host, code, b, sp.stderr.String())
		}
	}
	cs := siteContainers(t, d, name)
	if len(cs) != 2 {
		t.Fatalf("%d site containers, want 2: %v", len(cs), cs)
	}
	for _, c := range cs {
		slug := c.Labels[compose.LabelSiteplexSite]
		if slug != "two" && slug != "gh" {
			t.Errorf("container %v labelled site %q", c.Names, slug)
		}
		published := false
		for _, p := range c.Ports {
			published = published || p.IP == "127.0.0.1" && p.PublicPort != 0
		}
		if !published {
			t.Errorf("container %v is not published on 127.0.0.1: %v", c.Names, c.Ports)
		}
	}
	// `use` switches localhost at once, containers untouched.
	runUse(t, bin, root, "gh")
	if code, b := httpGet(t, sp.addr, "localhost", "/whoami"); code != 200 || !strings.Contains(string(b), `"site_id":"3"`) {
		t.Errorf("localhost after use gh: %d %s", code, b)
	}
	stopServe(t, sp)
	if cs := siteContainers(t, d, name); len(cs) != 0 {
		t.Errorf("site containers left after serve stopped: %v", cs)
	}

	// SIGKILL: the reaper removes the containers within seconds.
	sp = startServe(t, bin, root, "--runner", "docker")
	if code, b := httpGet(t, sp.addr, "two.localhost", "/whoami"); code != 200 {
		t.Fatalf("two.localhost: %d %s", code, b)
	}
	if len(siteContainers(t, d, name)) != 1 {
		t.Fatal("no site container running before SIGKILL")
	}
	sp.cmd.Process.Kill()
	killed := time.Now()
	for len(siteContainers(t, d, name)) > 0 {
		if time.Since(killed) > 10*time.Second {
			t.Fatalf("site containers still there 10s after SIGKILL of siteplex: %v", siteContainers(t, d, name))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("site container removed %s after SIGKILL of siteplex", time.Since(killed).Round(10*time.Millisecond))
}

func TestServeDockerRunnerSingleMode(t *testing.T) {
	bin := buildSiteplex(t)
	root := worldReadableDir(t)
	d, project, webPort := dockerProject(t, root)
	useProject(t, root, "")
	os.WriteFile(filepath.Join(root, ".env-local"), []byte("SITE_ID=1\n"), 0o644)
	webName := project + "-web-1"
	webBefore, err := d.API.ContainerInspect(context.Background(), webName)
	if err != nil {
		t.Fatal(err)
	}

	sp := startServe(t, bin, root, "--runner", "docker", "--mode", "single")
	if code, b := httpGet(t, sp.addr, "localhost", "/whoami"); code != 200 || !strings.Contains(string(b), `"site_id":"1"`) {
		t.Fatalf("localhost: %d %s\nserve:\n%s", code, b, sp.stderr.String())
	}
	u := useUnderLoad(t, bin, root, sp.addr, "two", "2", 2, 300*time.Millisecond)
	t.Logf("docker single mode: %d requests, 0 failed; `siteplex use` took %s (the engine call: %s; the web container is recreated while requests wait); first answer from SITE_ID 2 ended %s after `use` started",
		u.n, u.took.Round(time.Millisecond), engineTook(u.out), u.firstNew.Round(time.Millisecond))

	web, err := d.API.ContainerInspect(context.Background(), webName)
	if err != nil {
		t.Fatal(err)
	}
	if web.ID == webBefore.ID {
		t.Error("the web container was not recreated")
	}
	if !strings.Contains(strings.Join(web.Config.Env, " "), "SITE_ID=2") {
		t.Errorf("web env = %v", web.Config.Env)
	}
	// Its own published port serves the new site too.
	if code, b := httpGet(t, "127.0.0.1:"+strconv.Itoa(webPort), "localhost", "/whoami"); code != 200 || !strings.Contains(string(b), `"site_id":"2"`) {
		t.Errorf("web's published port: %d %s", code, b)
	}
	stopServe(t, sp)

	// Without an engine, `use` recreates the web container itself when
	// siteplex.toml says single mode with the docker runner.
	toml, _ := os.ReadFile(filepath.Join(root, "siteplex.toml"))
	os.WriteFile(filepath.Join(root, "siteplex.toml"), append([]byte("mode = \"single\"\n[process]\nrunner = \"docker\"\n\n"), toml...), 0o644)
	out := runUse(t, bin, root, "gh")
	if !strings.Contains(out, "recreated the web container with SITE_ID=3") {
		t.Errorf("use without an engine:\n%s", out)
	}
	if code, b := httpGet(t, "127.0.0.1:"+strconv.Itoa(webPort), "localhost", "/whoami"); code != 200 || !strings.Contains(string(b), `"site_id":"3"`) {
		t.Errorf("web after use gh: %d %s", code, b)
	}

	// SIGKILL of siteplex: the web container it recreated is stopped (and
	// kept: it is the project's own).
	sp = startServe(t, bin, root)
	if code, b := httpGet(t, sp.addr, "localhost", "/whoami"); code != 200 || !strings.Contains(string(b), `"site_id":"3"`) {
		t.Fatalf("localhost: %d %s", code, b)
	}
	sp.cmd.Process.Kill()
	killed := time.Now()
	for {
		web, err := d.API.ContainerInspect(context.Background(), webName)
		if err != nil {
			t.Fatalf("the web container is gone after SIGKILL: %v", err)
		}
		if !web.State.Running {
			break
		}
		if time.Since(killed) > 15*time.Second {
			t.Fatal("the web container still runs 15s after SIGKILL of siteplex")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("web container stopped %s after SIGKILL of siteplex", time.Since(killed).Round(10*time.Millisecond))
}

func TestSitesFromComposeDatabase(t *testing.T) {
	root := worldReadableDir(t)
	testenv.StartDocker(t)
	d, err := compose.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	project := compose.ProjectName(root, func(string) string { return "" })
	netName := composetest.Network(t, d.API, project)
	composetest.Run(t, d.API, project+"-database_default-1", &container.Config{
		Image: composetest.PostgresImage(t, d.API),
		Env:   []string{"POSTGRES_PASSWORD=" + composetest.PGPassword, "POSTGRES_DB=db"},
		Labels: map[string]string{compose.LabelProject: project, compose.LabelWorkingDir: root,
			compose.LabelService: "database_default", compose.LabelOneoff: "False"},
	}, &container.HostConfig{}, netName, "database_default")
	os.WriteFile(filepath.Join(root, "manage.py"), nil, 0o644)
	// Divio's .env-local: the host resolves only inside the compose network.
	os.WriteFile(filepath.Join(root, ".env-local"), []byte("DATABASE_URL=postgres://postgres@database_default:5432/db\nSITE_ID=2\n"), 0o644)

	var stdout, stderr string
	var code int
	deadline := time.Now().Add(60 * time.Second)
	for {
		stdout, stderr, code = runCLI(t, root, nil, "sites", "--json")
		if code == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond) // the server is starting
	}
	if code != 0 {
		t.Fatalf("sites --json: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{`"slug": "gh"`, `"real_domain": "www.example.gh"`, `"slug": "de"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("sites --json lacks %s:\n%s", want, stdout)
		}
	}
	stdout, stderr, code = runCLI(t, root, nil, "use")
	if code != 0 || !strings.Contains(stdout, "★ 2 gh (Ghana, gh.localhost)") {
		t.Errorf("use: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = runCLI(t, root, nil, "use", "de")
	if code != 0 || !strings.Contains(stdout, "SITE_ID=3: 3 de (Germany, de.localhost)") {
		t.Errorf("use de: exit %d\n%s%s", code, stdout, stderr)
	}
}
