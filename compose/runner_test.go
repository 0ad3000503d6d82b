package compose

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/go-connections/nat"

	"github.com/siteplex/siteplex/compose/composetest"
	"github.com/siteplex/siteplex/devproxy/supervisor"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

func TestContainerArgv(t *testing.T) {
	ms := []mount.Mount{{Type: mount.TypeBind, Source: "/home/me/acme", Target: "/app"},
		{Type: mount.TypeBind, Source: "/home/me/acme/data", Target: "/data"}}
	tests := []struct {
		in, want []string
	}{
		{[]string{"/home/me/acme/.venv/bin/python", "manage.py", "runserver", "127.0.0.1:41234", "--noreload"},
			[]string{"python", "manage.py", "runserver", "0.0.0.0:41234", "--noreload"}},
		{[]string{"python3", "manage.py", "runserver", "localhost:8000"},
			[]string{"python3", "manage.py", "runserver", "0.0.0.0:8000"}},
		{[]string{"/siteplex", "demo-site", "--host", "127.0.0.1", "--port", "9000"},
			[]string{"/siteplex", "demo-site", "--host", "0.0.0.0", "--port", "9000"}},
		{[]string{"uwsgi", "--chdir", "/home/me/acme", "--static-map", "/home/me/acme/data/media"},
			[]string{"uwsgi", "--chdir", "/app", "--static-map", "/data/media"}},
		{[]string{"gunicorn", "-b", "0.0.0.0:80", "/etc/x"}, []string{"gunicorn", "-b", "0.0.0.0:80", "/etc/x"}},
	}
	for _, tt := range tests {
		if got := containerArgv(tt.in, ms); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("containerArgv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCreateLinks(t *testing.T) {
	got := createLinks([]string{"/acme_db_1:/acme_web_1/postgres", "/redis:/acme_web_1/redis", "cache"})
	want := []string{"acme_db_1:postgres", "redis:redis", "cache"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("createLinks = %q, want %q", got, want)
	}
}

func TestSiteEnv(t *testing.T) {
	r := &Runner{EnvKeys: []string{"DATABASE_URL", "DEBUG"}}
	base := []string{"PATH=/usr/local/bin:/usr/bin", "DATABASE_URL=postgres://old@database_default/db", "SITE_ID=1", "LANG=C.UTF-8"}
	spec := supervisor.ProcessSpec{
		Site: sites.Site{ID: 2, Slug: "gh", Env: map[string]string{"DJANGO_SETTINGS_MODULE": "settings.gh"}},
		Env: []string{"PATH=/host/bin", "HOME=/root", "SITE_ID=2", "PORT=41234", "PYTHONUNBUFFERED=1",
			"DATABASE_URL=postgres://new@database_default/db", "DEBUG=True", "DJANGO_SETTINGS_MODULE=settings.gh"},
	}
	got := r.siteEnv(base, spec, true)
	want := []string{"PATH=/usr/local/bin:/usr/bin", "DATABASE_URL=postgres://new@database_default/db", "SITE_ID=2", "LANG=C.UTF-8",
		"DEBUG=True", "DJANGO_SETTINGS_MODULE=settings.gh", "PORT=41234", "PYTHONUNBUFFERED=1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("siteEnv:\n got %q\nwant %q", got, want)
	}
	// Single mode keeps the container's own PORT.
	r.EnvKeys = append(r.EnvKeys, "PORT") // PORT in the env file too
	if got := r.siteEnv([]string{"PORT=80"}, spec, false); slices.Contains(got, "PORT=41234") {
		t.Errorf("single mode changed PORT: %q", got)
	}
}

func TestAppPort(t *testing.T) {
	tests := []struct {
		bindings nat.PortMap
		exposed  nat.PortSet
		inner    int
		pub      string
	}{
		{nat.PortMap{"80/tcp": {{HostIP: "", HostPort: "8000"}}}, nil, 80, "127.0.0.1:8000"},
		{nat.PortMap{"443/tcp": {{HostPort: "8443"}}, "80/tcp": {{HostIP: "127.0.0.1", HostPort: "8000"}}}, nil, 80, "127.0.0.1:8000"},
		{nil, nat.PortSet{"8000/tcp": {}}, 8000, ""},
		{nil, nil, 0, ""},
	}
	for _, tt := range tests {
		inner, pub := appPort(&container.Config{ExposedPorts: tt.exposed}, &container.HostConfig{PortBindings: tt.bindings})
		if inner != tt.inner || pub != tt.pub {
			t.Errorf("appPort(%v, %v) = %d %q, want %d %q", tt.bindings, tt.exposed, inner, pub, tt.inner, tt.pub)
		}
	}
}

// whoami asks a demo-site at addr who it is, retrying until it answers.
func whoami(t *testing.T, addr string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	c := http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := c.Get("http://" + addr + "/whoami")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				var v map[string]any
				mustJSON(t, b, &v)
				return v
			}
			err = &httpStatusError{resp.Status}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s/whoami: %v", addr, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type httpStatusError struct{ s string }

func (e *httpStatusError) Error() string { return e.s }

// composeWeb makes a project folder named project and starts its
// compose-style `web` container from the siteplex image: demo-site on
// 0.0.0.0:8000 published on 127.0.0.1:hostPort (a free port), the project
// root bind-mounted at /app, SITE_ID=1 and FROM_WEB=yes.
func composeWeb(t *testing.T, d *Docker, project string) (root string, hostPort int, id string, labels map[string]string) {
	t.Helper()
	root = filepath.Join(t.TempDir(), project)
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	hostPort, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	netName := composetest.Network(t, d.API, project)
	labels = map[string]string{LabelProject: project, LabelWorkingDir: root, LabelService: "web",
		"com.docker.compose.container-number": "1", LabelOneoff: "False", "com.docker.compose.config-hash": "abc123"}
	cfg := &container.Config{
		Image:        composetest.WebImage(t, d.API),
		Env:          []string{"FROM_WEB=yes", "SITE_ID=1"},
		Cmd:          []string{"/siteplex", "demo-site", "--host", "0.0.0.0", "--port", "8000", "--site", "web"},
		Labels:       labels,
		ExposedPorts: nat.PortSet{"8000/tcp": {}},
	}
	hc := &container.HostConfig{
		Binds:        []string{root + ":/app:rw"},
		PortBindings: nat.PortMap{"8000/tcp": {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(hostPort)}}},
	}
	id = composetest.Run(t, d.API, project+"-web-1", cfg, hc, netName, "web")
	return root, hostPort, id, labels
}

func envOf(insp container.InspectResponse) map[string]string {
	m := map[string]string{}
	for _, kv := range insp.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestRunnerPerSite(t *testing.T) {
	d := dockerT(t)
	ctx := context.Background()
	root, _, _, _ := composeWeb(t, d, "runproj")
	os.WriteFile(filepath.Join(root, "marker.txt"), []byte("mounted"), 0o644)

	r, err := NewRunner(ctx, d, root, "runproj", "acme")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := testenv.FreePort()
	out := &testenv.Buffer{}
	spec := supervisor.ProcessSpec{
		Site: sites.Site{ID: 2, Slug: "gh", Env: map[string]string{"TENANT": "ghana"}},
		Port: port,
		Argv: []string{"/siteplex", "demo-site", "--host", "127.0.0.1", "--port", strconv.Itoa(port), "--site", "gh"},
		Env:  []string{"PATH=/host/only", "HOSTONLY=1", "SITE_ID=2", "PORT=" + strconv.Itoa(port), "PYTHONUNBUFFERED=1"},
		Dir:  root, Stdout: out, Stderr: out,
	}
	start := time.Now()
	proc, err := r.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	name := "runproj-siteplex-gh"
	t.Cleanup(func() { composetest.Remove(d.API, name) })

	who := whoami(t, proc.Addr())
	t.Logf("site container: Start took %s, first answer %s after Start began",
		proc.(interface{ Started() time.Duration }).Started().Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if who["site_id"] != "2" || who["site"] != "gh" {
		t.Errorf("site container answers %v, want SITE_ID 2, site gh", who)
	}
	// Published on 127.0.0.1:port as well.
	if who := whoami(t, "127.0.0.1:"+strconv.Itoa(port)); who["site_id"] != "2" {
		t.Errorf("published port answers %v", who)
	}
	insp, err := d.API.ContainerInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if insp.Config.Labels[LabelSiteplexProject] != "acme" || insp.Config.Labels[LabelSiteplexSite] != "gh" {
		t.Errorf("labels = %v", insp.Config.Labels)
	}
	if _, ok := insp.Config.Labels[LabelProject]; ok {
		t.Error("site containers must not carry compose labels (compose would adopt them)")
	}
	env := envOf(insp)
	if env["FROM_WEB"] != "yes" || env["SITE_ID"] != "2" || env["TENANT"] != "ghana" || env["HOSTONLY"] != "" || env["PATH"] == "/host/only" {
		t.Errorf("environment = %v", insp.Config.Env)
	}
	b := insp.HostConfig.PortBindings[nat.Port(strconv.Itoa(port)+"/tcp")]
	if len(b) != 1 || b[0].HostIP != "127.0.0.1" || b[0].HostPort != strconv.Itoa(port) {
		t.Errorf("port bindings = %v", insp.HostConfig.PortBindings)
	}
	if _, ok := insp.NetworkSettings.Networks["runproj_default"]; !ok {
		t.Errorf("networks = %v", insp.NetworkSettings.Networks)
	}
	if insp.Config.WorkingDir != "/app" || !slices.ContainsFunc(insp.Mounts, func(m container.MountPoint) bool {
		return m.Destination == "/app" && m.Source == root
	}) {
		t.Errorf("workdir %q mounts %v", insp.Config.WorkingDir, insp.Mounts)
	}
	if !slices.Contains(insp.Config.Cmd, "0.0.0.0") {
		t.Errorf("command %q does not listen on 0.0.0.0", insp.Config.Cmd)
	}
	listening := "gh listening on [::]:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), listening) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out.String(), listening) {
		t.Errorf("output not streamed: %q", out.String())
	}

	// Stop: the container is gone.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := proc.Stop(sctx, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := d.API.ContainerInspect(ctx, name); !cerrdefs.IsNotFound(err) {
		t.Errorf("container still there after Stop: %v", err)
	}

	// A crash: Wait reports the exit code and the container is removed.
	proc, err = r.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	whoami(t, proc.Addr())
	if err := d.API.ContainerKill(ctx, name, "KILL"); err != nil {
		t.Fatal(err)
	}
	code, _ := proc.Wait()
	if code != 137 {
		t.Errorf("exit code after SIGKILL = %d, want 137", code)
	}
	if _, err := d.API.ContainerInspect(ctx, name); !cerrdefs.IsNotFound(err) {
		t.Errorf("crashed container not removed: %v", err)
	}
}

func TestRunnerSweepsStaleContainers(t *testing.T) {
	d := dockerT(t)
	ctx := context.Background()
	root, _, _, _ := composeWeb(t, d, "sweepproj")
	// A site container left by a siteplex that was SIGKILLed (pid gone).
	composetest.Run(t, d.API, "sweepproj-siteplex-old", &container.Config{Image: composetest.WebImage(t, d.API),
		Cmd:    []string{"/siteplex", "demo-site"},
		Labels: map[string]string{LabelSiteplexProject: "sweep", LabelSiteplexSite: "old", LabelSiteplexPID: "999999"}},
		&container.HostConfig{}, "")
	if _, err := NewRunner(ctx, d, root, "sweepproj", "sweep"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.API.ContainerInspect(ctx, "sweepproj-siteplex-old"); !cerrdefs.IsNotFound(err) {
		t.Errorf("stale container not swept: %v", err)
	}
}

func TestRunnerNoWebService(t *testing.T) {
	d := dockerT(t)
	_, err := NewRunner(context.Background(), d, t.TempDir(), "nowebproj", "noweb")
	if err == nil || !strings.Contains(err.Error(), `has no "web" container`) {
		t.Fatalf("err = %v", err)
	}
}

func TestRunnerSingleRecreatesWeb(t *testing.T) {
	d := dockerT(t)
	ctx := context.Background()
	root, webPort, oldID, labels := composeWeb(t, d, "singleproj")
	if who := whoami(t, "127.0.0.1:"+strconv.Itoa(webPort)); who["site_id"] != "1" {
		t.Fatalf("web before: %v", who)
	}
	r, err := NewRunner(ctx, d, root, "singleproj", "single")
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []int64{3, 4} {
		spec := supervisor.ProcessSpec{Single: true, Site: sites.Site{ID: id, Slug: "s" + strconv.FormatInt(id, 10)},
			Env: []string{"SITE_ID=" + strconv.FormatInt(id, 10), "PATH=/host/only"}, Port: 1, Dir: root}
		start := time.Now()
		proc, err := r.Start(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		who := whoami(t, proc.Addr())
		t.Logf("recreate %d: web serves SITE_ID %v after %s", i, who["site_id"], time.Since(start).Round(time.Millisecond))
		if who["site_id"] != strconv.FormatInt(id, 10) {
			t.Errorf("recreated web answers %v, want SITE_ID %d", who, id)
		}
		// Its published port is kept.
		if who := whoami(t, "127.0.0.1:"+strconv.Itoa(webPort)); who["site_id"] != strconv.FormatInt(id, 10) {
			t.Errorf("published port answers %v", who)
		}
		insp, err := d.API.ContainerInspect(ctx, "singleproj-web-1")
		if err != nil {
			t.Fatal(err)
		}
		if insp.ID == oldID {
			t.Error("the web container was not recreated")
		}
		if !reflect.DeepEqual(insp.Config.Labels, labels) {
			t.Errorf("labels = %v, want %v", insp.Config.Labels, labels)
		}
		if env := envOf(insp); env["SITE_ID"] != strconv.FormatInt(id, 10) || env["FROM_WEB"] != "yes" || env["PATH"] == "/host/only" {
			t.Errorf("env = %v", insp.Config.Env)
		}
		ep := insp.NetworkSettings.Networks["singleproj_default"]
		if ep == nil || !slices.Contains(ep.Aliases, "web") {
			t.Errorf("network endpoint = %+v, want alias web", ep)
		}
		if !slices.ContainsFunc(insp.Mounts, func(m container.MountPoint) bool { return m.Destination == "/app" && m.Source == root }) {
			t.Errorf("mounts = %v", insp.Mounts)
		}
		// Stopping keeps the container (it is the project's own web).
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := proc.Stop(sctx, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		cancel()
		insp, err = d.API.ContainerInspect(ctx, "singleproj-web-1")
		if err != nil || insp.State.Running {
			t.Errorf("after Stop: err=%v running=%v, want a stopped container", err, insp.State != nil && insp.State.Running)
		}
		oldID = insp.ID
	}
}

func TestRunnerSingleRollback(t *testing.T) {
	d := dockerT(t)
	ctx := context.Background()
	root, webPort, oldID, _ := composeWeb(t, d, "rollbackproj")
	whoami(t, "127.0.0.1:"+strconv.Itoa(webPort))
	// Stop web and take its published port: the recreated container
	// cannot start.
	secs := 5
	if err := d.API.ContainerStop(ctx, oldID, container.StopOptions{Timeout: &secs}); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(webPort))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r, err := NewRunner(ctx, d, root, "rollbackproj", "rollback")
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Start(ctx, supervisor.ProcessSpec{Single: true, Site: sites.Site{ID: 5}, Env: []string{"SITE_ID=5"}})
	if err == nil || !strings.Contains(err.Error(), "is back as it was") {
		t.Fatalf("Start with the port taken: %v", err)
	}
	insp, err := d.API.ContainerInspect(ctx, "rollbackproj-web-1")
	if err != nil || insp.ID != oldID {
		t.Fatalf("the original web container is not back under its name: %v (id %s, want %s)", err, insp.ID, oldID)
	}
	if env := envOf(insp); env["SITE_ID"] != "1" {
		t.Errorf("original env changed: %v", insp.Config.Env)
	}
	if _, err := d.API.ContainerInspect(ctx, "rollbackproj-web-1-siteplex-previous"); !cerrdefs.IsNotFound(err) {
		t.Errorf("the set-aside name is still in use: %v", err)
	}
}

func TestReaper(t *testing.T) {
	d := dockerT(t)
	ctx := context.Background()
	img := composetest.WebImage(t, d.API)
	run := func(name string) string {
		return composetest.Run(t, d.API, name, &container.Config{Image: img, Cmd: []string{"/siteplex", "demo-site"}}, &container.HostConfig{}, "")
	}
	site, web, kept := run("reaper-site"), run("reaper-web"), run("reaper-kept")
	in := strings.Join([]string{
		"remove " + site,
		"stop " + web,
		"remove " + kept,
		"forget " + kept, // stopped by siteplex itself in the meantime
		"garbage",
	}, "\n") + "\n"
	if err := RunReaper(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if _, err := d.API.ContainerInspect(ctx, site); !cerrdefs.IsNotFound(err) {
		t.Errorf("site container not removed: %v", err)
	}
	if insp, err := d.API.ContainerInspect(ctx, web); err != nil || insp.State.Running {
		t.Errorf("web container: err=%v, want it stopped and kept", err)
	}
	if insp, err := d.API.ContainerInspect(ctx, kept); err != nil || !insp.State.Running {
		t.Errorf("forgotten container was touched: %v", err)
	}
	// Nothing listed: nothing to do, no Docker needed.
	t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock")
	if err := RunReaper(strings.NewReader("remove x\nforget x\n")); err != nil {
		t.Errorf("empty list: %v", err)
	}
}
