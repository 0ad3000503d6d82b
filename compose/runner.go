package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/siteplex/siteplex/devproxy/supervisor"
)

// WebService is the compose service whose image, mounts, networks and
// environment the runner's containers copy.
const WebService = "web"

// Runner runs each site's process as a container made from the compose
// project's `web` service (docs/docker.md, "`--runner docker`"). It implements
// supervisor.Runner.
//
// Per-site mode: one container per site, from the image the web container
// runs, with its mounts, networks and environment plus SITE_ID, PORT,
// PYTHONUNBUFFERED and the site's own env; the command listens on
// 0.0.0.0:{port} and is published on 127.0.0.1:{port}. Containers are
// labelled siteplex.project and siteplex.site and removed when they stop.
//
// Single mode: the web container itself is recreated with the new SITE_ID
// (name, labels, command, mounts, networks and ports kept), because a
// plain restart keeps the old environment. Stopping it stops it without
// removing it.
type Runner struct {
	d *Docker
	// Root is the project root (host paths under it are mapped into the
	// container through the web service's bind mounts).
	Root string
	// Compose is the compose project name.
	Compose string
	// Project is siteplex's project name, the siteplex.project label.
	Project string
	// EnvKeys are env-file keys whose current values (from the spec's
	// environment) replace the ones the web container was created with.
	EnvKeys []string
	// ReaperArgv, when set, is the command of the reaper process
	// (`siteplex docker-reaper`) that removes this runner's containers
	// when siteplex exits, even on SIGKILL. ReaperLog receives its output.
	ReaperArgv []string
	ReaperLog  io.Writer

	mu     sync.Mutex // serialises single-mode recreation
	reaper reaper
}

var _ supervisor.Runner = (*Runner)(nil)

// NewRunner returns a runner for the compose project in root. It removes
// containers a previous siteplex of this project left behind (its pid is
// gone), and checks that the project has a web container.
func NewRunner(ctx context.Context, d *Docker, root, composeName, project string) (*Runner, error) {
	r := &Runner{d: d, Root: root, Compose: composeName, Project: project}
	if err := r.Sweep(ctx); err != nil {
		return nil, err
	}
	if _, err := r.web(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Sweep removes this project's site containers whose siteplex is gone.
func (r *Runner) Sweep(ctx context.Context) error {
	cs, err := r.d.API.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", LabelSiteplexProject+"="+r.Project))})
	if err != nil {
		return fmt.Errorf("listing siteplex containers at %s: %w", r.d.Host, err)
	}
	for _, c := range cs {
		pid, _ := strconv.Atoi(c.Labels[LabelSiteplexPID])
		if pid == os.Getpid() || pid > 0 && alive(pid) && c.State == container.StateRunning {
			continue
		}
		if err := r.d.API.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("removing stale container %s: %w", strings.Join(c.Names, ","), err)
		}
	}
	return nil
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// web inspects the project's web service container (running or not).
func (r *Runner) web(ctx context.Context) (container.InspectResponse, error) {
	p, err := r.d.FindProject(ctx, r.Root, r.Compose, true)
	if err != nil {
		return container.InspectResponse{}, err
	}
	c := p.Service(WebService)
	if c == nil {
		have := "no containers"
		if s := p.Services(); len(s) > 0 {
			have = "services " + strings.Join(s, ", ")
		}
		return container.InspectResponse{}, fmt.Errorf("%s has no %q container (found %s): create it with `docker compose up --no-start %s`", p.describe(r.Root), WebService, have, WebService)
	}
	insp, err := r.d.API.ContainerInspect(ctx, c.ID)
	if err != nil {
		return container.InspectResponse{}, fmt.Errorf("inspecting the %s container: %w", WebService, err)
	}
	if insp.Config == nil || insp.HostConfig == nil || insp.NetworkSettings == nil {
		return container.InspectResponse{}, fmt.Errorf("the %s container %s: Docker returned an incomplete description", WebService, insp.Name)
	}
	return insp, nil
}

// Start starts one site's container (or, in single mode, recreates the web
// container) and returns when it runs.
func (r *Runner) Start(ctx context.Context, spec supervisor.ProcessSpec) (supervisor.Proc, error) {
	web, err := r.web(ctx)
	if err != nil {
		return nil, err
	}
	if spec.Single {
		return r.startSingle(ctx, web, spec)
	}
	return r.startSite(ctx, web, spec)
}

// siteEnv is the web container's environment with the spec's SITE_ID,
// PORT, PYTHONUNBUFFERED, current env-file values and the site's env.
func (r *Runner) siteEnv(base []string, spec supervisor.ProcessSpec, withPort bool) []string {
	specEnv := map[string]string{}
	for _, kv := range spec.Env {
		k, v, _ := strings.Cut(kv, "=")
		specEnv[k] = v
	}
	keys := append([]string{"SITE_ID", "PYTHONUNBUFFERED"}, r.EnvKeys...)
	if withPort {
		keys = append(keys, "PORT")
	}
	for k := range spec.Site.Env {
		keys = append(keys, k)
	}
	over := map[string]string{}
	for _, k := range keys {
		if k == "PORT" && !withPort {
			continue // single mode keeps the container's own port
		}
		if v, ok := specEnv[k]; ok {
			over[k] = v
		}
	}
	for k, v := range spec.Site.Env {
		over[k] = v
	}
	if _, ok := over["SITE_ID"]; !ok && spec.Site.ID != 0 {
		over["SITE_ID"] = strconv.FormatInt(spec.Site.ID, 10)
	}
	return mergeEnv(base, over)
}

// mergeEnv returns base with over's keys replaced in place or appended in
// key order.
func mergeEnv(base []string, over map[string]string) []string {
	out := make([]string, 0, len(base)+len(over))
	done := map[string]bool{}
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if v, ok := over[k]; ok {
			if !done[k] {
				out = append(out, k+"="+v)
				done[k] = true
			}
			continue
		}
		out = append(out, kv)
	}
	keys := make([]string, 0, len(over))
	for k := range over {
		if !done[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+over[k])
	}
	return out
}

// mounts copies a container's mounts (binds, named and anonymous volumes
// — the anonymous ones are shared, not recreated, so no data is lost —
// and tmpfs).
func mounts(insp container.InspectResponse) []mount.Mount {
	var out []mount.Mount
	for _, m := range insp.Mounts {
		mm := mount.Mount{Type: m.Type, Target: m.Destination, ReadOnly: !m.RW}
		switch m.Type {
		case mount.TypeBind:
			mm.Source = m.Source
			if m.Propagation != "" {
				mm.BindOptions = &mount.BindOptions{Propagation: m.Propagation}
			}
		case mount.TypeVolume:
			mm.Source = m.Name
		case mount.TypeTmpfs:
		default:
			continue
		}
		out = append(out, mm)
	}
	return out
}

// hostToContainer maps a host path under one of the bind mounts to its
// path in the container.
func hostToContainer(ms []mount.Mount, p string) (string, bool) {
	best, bestLen := "", -1
	for _, m := range ms {
		if m.Type != mount.TypeBind {
			continue
		}
		src := filepath.Clean(m.Source)
		if p == src || strings.HasPrefix(p, src+"/") {
			if len(src) > bestLen {
				best, bestLen = filepath.Join(m.Target, strings.TrimPrefix(p, src)), len(src)
			}
		}
	}
	return best, bestLen >= 0
}

// containerArgv adapts the host command for the container: loopback
// listen addresses (an argument "127.0.0.1", "localhost" or "::1", or one
// of them with a :port) become 0.0.0.0, a virtualenv's python on the host
// becomes the image's `python`, and host paths under a bind mount are
// mapped into the container.
func containerArgv(argv []string, ms []mount.Mount) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case i == 0 && filepath.IsAbs(a) && strings.HasPrefix(filepath.Base(a), "python") &&
			filepath.Base(filepath.Dir(a)) == "bin":
			a = "python"
		case a == "127.0.0.1" || a == "localhost" || a == "::1":
			a = "0.0.0.0"
		case strings.HasPrefix(a, "127.0.0.1:"):
			a = "0.0.0.0:" + strings.TrimPrefix(a, "127.0.0.1:")
		case strings.HasPrefix(a, "localhost:"):
			a = "0.0.0.0:" + strings.TrimPrefix(a, "localhost:")
		case strings.HasPrefix(a, "[::1]:"):
			a = "0.0.0.0:" + strings.TrimPrefix(a, "[::1]:")
		case filepath.IsAbs(a):
			if m, ok := hostToContainer(ms, a); ok {
				a = m
			}
		}
		out[i] = a
	}
	return out
}

// networks returns the container's networks, sorted by name.
func networks(insp container.InspectResponse) []string {
	var out []string
	for n := range insp.NetworkSettings.Networks {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// containerName is a valid Docker name for a site container.
func (r *Runner) containerName(slug string) string {
	base := r.Compose
	if base == "" {
		base = NormalizeProjectName(r.Project)
	}
	var b strings.Builder
	for _, c := range base + "-siteplex-" + slug {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' {
			b.WriteRune(c)
		}
	}
	return strings.TrimLeft(b.String(), "_.-")
}

func (r *Runner) startSite(ctx context.Context, web container.InspectResponse, spec supervisor.ProcessSpec) (supervisor.Proc, error) {
	began := time.Now()
	ms := mounts(web)
	port := nat.Port(strconv.Itoa(spec.Port) + "/tcp")
	workdir := web.Config.WorkingDir
	if spec.Dir != "" {
		if m, ok := hostToContainer(ms, spec.Dir); ok {
			workdir = m
		}
	}
	cfg := &container.Config{
		Image:        r.serviceImage(ctx, web),
		Env:          r.siteEnv(web.Config.Env, spec, true),
		Cmd:          containerArgv(spec.Argv, ms),
		Entrypoint:   web.Config.Entrypoint,
		WorkingDir:   workdir,
		User:         web.Config.User,
		ExposedPorts: nat.PortSet{port: struct{}{}},
		Labels: map[string]string{
			LabelSiteplexProject: r.Project,
			LabelSiteplexSite:    spec.Site.Slug,
			LabelSiteplexPID:     strconv.Itoa(os.Getpid()),
		},
		StopSignal: web.Config.StopSignal,
	}
	hc := &container.HostConfig{
		Mounts:       ms,
		Tmpfs:        web.HostConfig.Tmpfs,
		ExtraHosts:   web.HostConfig.ExtraHosts,
		Links:        createLinks(web.HostConfig.Links),
		DNS:          web.HostConfig.DNS,
		DNSSearch:    web.HostConfig.DNSSearch,
		Init:         web.HostConfig.Init,
		CapAdd:       web.HostConfig.CapAdd,
		SecurityOpt:  web.HostConfig.SecurityOpt,
		PortBindings: nat.PortMap{port: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(spec.Port)}}},
	}
	nets := networks(web)
	var nc *network.NetworkingConfig
	mode := web.HostConfig.NetworkMode
	switch {
	case mode.IsHost():
		hc.NetworkMode, hc.PortBindings, cfg.ExposedPorts = mode, nil, nil
		nets = nil
	case len(nets) > 0:
		hc.NetworkMode = container.NetworkMode(nets[0])
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			nets[0]: {Links: web.NetworkSettings.Networks[nets[0]].Links},
		}}
	}
	name := r.containerName(spec.Site.Slug)
	// A container of that name is a leftover of this project's siteplex.
	if old, err := r.d.API.ContainerInspect(ctx, name); err == nil && old.Config != nil && old.Config.Labels[LabelSiteplexProject] == r.Project {
		if err := r.d.API.ContainerRemove(ctx, old.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("removing the old container %s: %w", name, err)
		}
	}
	created, err := r.d.API.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	if err != nil {
		return nil, fmt.Errorf("creating container %s from the %s service's image: %w", name, WebService, err)
	}
	r.track("remove", created.ID)
	p := &proc{r: r, id: created.ID, name: name, remove: true, done: make(chan struct{})}
	for _, n := range nets[min(1, len(nets)):] {
		if err := r.d.API.NetworkConnect(ctx, n, created.ID, &network.EndpointSettings{Links: web.NetworkSettings.Networks[n].Links}); err != nil {
			r.removeNow(created.ID)
			return nil, fmt.Errorf("connecting %s to network %s: %w", name, n, err)
		}
	}
	if err := p.start(ctx, spec); err != nil {
		r.removeNow(created.ID)
		return nil, err
	}
	p.addr = r.addr(ctx, created.ID, spec.Port, "127.0.0.1:"+strconv.Itoa(spec.Port))
	p.took = time.Since(began)
	if mode.IsHost() {
		p.addr = "127.0.0.1:" + strconv.Itoa(spec.Port)
	}
	return p, nil
}

// createLinks turns legacy links as inspect shows them
// ("/acme_db_1:/acme_web_1/postgres") into the form create takes
// ("acme_db_1:postgres").
func createLinks(links []string) []string {
	var out []string
	for _, l := range links {
		target, alias, ok := strings.Cut(l, ":")
		if !ok {
			out = append(out, strings.TrimPrefix(l, "/"))
			continue
		}
		out = append(out, strings.TrimPrefix(target, "/")+":"+path.Base(alias))
	}
	return out
}

// serviceImage is the web service's image: by the name compose gave it, so
// that a `docker compose build` is picked up by the next site container
// as by the next `docker compose up`; the exact image web runs when that
// name is gone.
func (r *Runner) serviceImage(ctx context.Context, web container.InspectResponse) string {
	if name := web.Config.Image; name != "" {
		if _, err := r.d.API.ImageInspect(ctx, name); err == nil {
			return name
		}
	}
	return web.Image
}

// removeNow force-removes a container, ignoring errors (clean-up after a
// failed start).
func (r *Runner) removeNow(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r.d.API.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	r.track("forget", id)
}

// addr is where siteplex proxies to: the container's own address when this
// machine can route to it (Linux: the bridge), so that "the port accepts
// connections" means the app listens — Docker's userland proxy accepts
// published connections before the app is up; else the published address.
func (r *Runner) addr(ctx context.Context, id string, port int, published string) string {
	insp, err := r.d.API.ContainerInspect(ctx, id)
	if err != nil || insp.NetworkSettings == nil {
		return published
	}
	for _, n := range networks(insp) {
		ep := insp.NetworkSettings.Networks[n]
		if ep != nil && ep.IPAddress != "" && routable(ep.IPAddress) {
			return net.JoinHostPort(ep.IPAddress, strconv.Itoa(port))
		}
	}
	return published
}

func (r *Runner) startSingle(ctx context.Context, web container.InspectResponse, spec supervisor.ProcessSpec) (supervisor.Proc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := strings.TrimPrefix(web.Name, "/")
	cfg := *web.Config
	cfg.Env = r.siteEnv(web.Config.Env, spec, false)
	if len(web.ID) >= 12 && cfg.Hostname == web.ID[:12] {
		cfg.Hostname = "" // Docker's default: the new container gets its own
	}
	hc := *web.HostConfig
	hc.Binds, hc.Mounts = nil, mounts(web)
	hc.Links = createLinks(hc.Links)
	hc.AutoRemove = false
	nets := networks(web)
	endpoint := func(n string) *network.EndpointSettings {
		ep := web.NetworkSettings.Networks[n]
		var aliases []string
		for _, a := range ep.Aliases {
			if !strings.HasPrefix(web.ID, a) { // Docker adds the short id itself
				aliases = append(aliases, a)
			}
		}
		return &network.EndpointSettings{Aliases: aliases, Links: ep.Links, IPAMConfig: ep.IPAMConfig, DriverOpts: ep.DriverOpts}
	}
	var nc *network.NetworkingConfig
	custom := !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer() && !hc.NetworkMode.IsNone()
	if custom && len(nets) > 0 {
		if hc.NetworkMode.IsDefault() || hc.NetworkMode == "" {
			hc.NetworkMode = container.NetworkMode(nets[0])
		}
		first := string(hc.NetworkMode)
		if _, ok := web.NetworkSettings.Networks[first]; !ok {
			first = nets[0]
		}
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{first: endpoint(first)}}
		rest := nets[:0:0]
		for _, n := range nets {
			if n != first {
				rest = append(rest, n)
			}
		}
		nets = rest
	} else {
		nets = nil
	}
	// Stop the old container and set it aside under another name; create
	// and start the new one under the real name; only then remove the old
	// one (its volumes stay: the new container mounts them). When anything
	// fails the old container is put back as it was.
	wasRunning := web.State != nil && web.State.Running
	if wasRunning {
		t := 10
		if err := r.d.API.ContainerStop(ctx, web.ID, container.StopOptions{Timeout: &t}); err != nil && !cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("stopping the %s container %s: %w", WebService, name, err)
		}
	}
	aside := name + "-siteplex-previous"
	if old, err := r.d.API.ContainerInspect(ctx, aside); err == nil {
		// Left by an interrupted recreation; the real name is taken by web.
		r.d.API.ContainerRemove(ctx, old.ID, container.RemoveOptions{Force: true})
	}
	if err := r.d.API.ContainerRename(ctx, web.ID, aside); err != nil {
		return nil, fmt.Errorf("renaming the %s container %s to recreate it: %w", WebService, name, err)
	}
	rollback := func(newID string, cause error) error {
		bctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if newID != "" {
			r.d.API.ContainerRemove(bctx, newID, container.RemoveOptions{Force: true})
			r.track("forget", newID)
		}
		if err := r.d.API.ContainerRename(bctx, web.ID, name); err != nil {
			return fmt.Errorf("%w; and putting the old container back failed too (it is named %s now): %v", cause, aside, err)
		}
		if wasRunning {
			r.d.API.ContainerStart(bctx, web.ID, container.StartOptions{})
		}
		return fmt.Errorf("%w (the old %s container is back as it was; recreate it with `docker compose up -d --force-recreate %s`)", cause, WebService, WebService)
	}
	created, err := r.d.API.ContainerCreate(ctx, &cfg, &hc, nc, nil, name)
	if err != nil {
		return nil, rollback("", fmt.Errorf("recreating the %s container %s with SITE_ID=%d: %w", WebService, name, spec.Site.ID, err))
	}
	for _, n := range nets {
		if err := r.d.API.NetworkConnect(ctx, n, created.ID, endpoint(n)); err != nil {
			return nil, rollback(created.ID, fmt.Errorf("connecting %s to network %s: %w", name, n, err))
		}
	}
	r.track("stop", created.ID)
	p := &proc{r: r, id: created.ID, name: name, done: make(chan struct{})}
	if err := p.start(ctx, spec); err != nil {
		return nil, rollback(created.ID, err)
	}
	if err := r.d.API.ContainerRemove(ctx, web.ID, container.RemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		fmt.Fprintf(orDiscard(spec.Stderr), "siteplex: the previous %s container is left as %s: %v\n", WebService, aside, err)
	}
	inner, published := appPort(&cfg, &hc)
	p.addr = published
	if inner != 0 {
		p.addr = r.addr(ctx, created.ID, inner, published)
	}
	if p.addr == "" {
		p.addr = "127.0.0.1:" + strconv.Itoa(spec.Port)
	}
	return p, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// appPort picks the web container's application port: the only published
// one, else 80, 8000 or 8080, else the lowest; with the host address it is
// published on.
func appPort(cfg *container.Config, hc *container.HostConfig) (int, string) {
	var ports []int
	seen := map[int]bool{}
	add := func(p nat.Port) {
		if p.Proto() == "tcp" && !seen[p.Int()] {
			seen[p.Int()] = true
			ports = append(ports, p.Int())
		}
	}
	for p := range hc.PortBindings {
		add(p)
	}
	if len(ports) == 0 {
		for p := range cfg.ExposedPorts {
			add(p)
		}
	}
	if len(ports) == 0 {
		return 0, ""
	}
	sort.Ints(ports)
	inner := ports[0]
	for _, want := range []int{80, 8000, 8080} {
		if seen[want] && len(ports) > 1 {
			inner = want
			break
		}
	}
	pub := ""
	if host, port, ok := published(hc.PortBindings, inner); ok {
		pub = net.JoinHostPort(host, strconv.Itoa(port))
	}
	return inner, pub
}

// proc is a running container.
type proc struct {
	r      *Runner
	id     string
	name   string
	addr   string
	remove bool // remove the container once it has stopped
	took   time.Duration

	done chan struct{}
	code int
	err  error
}

// start starts the container, streams its output to the spec's writers
// and watches for its exit.
func (p *proc) start(ctx context.Context, spec supervisor.ProcessSpec) error {
	api := p.r.d.API
	waitC, errC := api.ContainerWait(context.Background(), p.id, container.WaitConditionNextExit)
	if err := api.ContainerStart(ctx, p.id, container.StartOptions{}); err != nil {
		return fmt.Errorf("starting container %s: %w", p.name, err)
	}
	logsDone := make(chan struct{})
	logs, err := api.ContainerLogs(context.Background(), p.id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		close(logsDone)
	} else {
		go func() {
			defer close(logsDone)
			defer logs.Close()
			stdout, stderr := spec.Stdout, spec.Stderr
			if stdout == nil {
				stdout = io.Discard
			}
			if stderr == nil {
				stderr = io.Discard
			}
			stdcopy.StdCopy(stdout, stderr, logs)
		}()
	}
	go func() {
		select {
		case res := <-waitC:
			p.code = int(res.StatusCode)
			if res.Error != nil && res.Error.Message != "" {
				p.err = fmt.Errorf("container %s: %s", p.name, res.Error.Message)
			}
		case err := <-errC:
			p.code, p.err = -1, fmt.Errorf("waiting for container %s: %w", p.name, err)
		}
		select {
		case <-logsDone:
		case <-time.After(2 * time.Second):
		}
		if p.remove {
			p.r.removeNow(p.id)
		}
		p.r.track("forget", p.id)
		close(p.done)
	}()
	return nil
}

// Started is how long creating and starting the container took.
func (p *proc) Started() time.Duration { return p.took }

// PID is 0: the process lives in a container.
func (p *proc) PID() int { return 0 }

// Addr is where to proxy to.
func (p *proc) Addr() string { return p.addr }

// ID is the container's id.
func (p *proc) ID() string { return p.id }

// Name is the container's name.
func (p *proc) Name() string { return p.name }

// Wait blocks until the container has exited (and, per site, is removed).
func (p *proc) Wait() (int, error) {
	<-p.done
	return p.code, p.err
}

// Stop stops the container (SIGTERM, SIGKILL after grace) and returns once
// it has exited and, for site containers, been removed.
func (p *proc) Stop(ctx context.Context, grace time.Duration) error {
	secs := int((grace + time.Second - 1) / time.Second)
	err := p.r.d.API.ContainerStop(ctx, p.id, container.StopOptions{Timeout: &secs})
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsNotModified(err) {
		select {
		case <-p.done:
			return nil
		default:
		}
		return fmt.Errorf("stopping container %s: %w", p.name, err)
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
