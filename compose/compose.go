// Package compose is siteplex's view of a docker-compose project through
// the Docker Engine API (docs/docker.md): it finds the project's containers by
// their compose labels, builds a database URL for the database container
// (sites.DockerFinder), and runs site processes as containers made from
// the `web` service (a supervisor.Runner).
//
// It talks to the engine with github.com/docker/docker/client, honouring
// DOCKER_HOST and the other DOCKER_* variables. When no engine answers,
// every call fails with an *UnreachableError ("Docker is not reachable at
// <host>: <error>"), and the rest of siteplex goes on without Docker.
package compose

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// Compose's labels (set by docker compose v1 and v2 on every container).
const (
	LabelProject    = "com.docker.compose.project"
	LabelWorkingDir = "com.docker.compose.project.working_dir"
	LabelService    = "com.docker.compose.service"
	LabelOneoff     = "com.docker.compose.oneoff"
)

// siteplex's own labels on the containers the runner makes.
const (
	LabelSiteplexProject = "siteplex.project"
	LabelSiteplexSite    = "siteplex.site"
	// LabelSiteplexPID is the pid of the siteplex that started the
	// container; a later siteplex removes containers whose owner is gone.
	LabelSiteplexPID = "siteplex.pid"
)

// DatabaseServices are the compose service names of a project's database,
// in the order they are tried (Divio: database_default, older: db).
var DatabaseServices = []string{"database_default", "db", "postgres", "mysql", "mariadb"}

// UnreachableError says the Docker engine did not answer.
type UnreachableError struct {
	Host string
	Err  error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("Docker is not reachable at %s: %v", e.Host, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err says the Docker engine did not answer.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}

// Docker is a connection to a Docker engine.
type Docker struct {
	API  *client.Client
	Host string
}

// pingTimeout bounds how long Connect waits for the engine.
const pingTimeout = 3 * time.Second

// Connect connects to the engine named by DOCKER_HOST (default the local
// socket) and checks that it answers. An engine that does not answer gives
// an *UnreachableError.
func Connect(ctx context.Context) (*Docker, error) {
	api, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		host := os.Getenv("DOCKER_HOST")
		if host == "" {
			host = client.DefaultDockerHost
		}
		return nil, &UnreachableError{Host: host, Err: err}
	}
	d := &Docker{API: api, Host: api.DaemonHost()}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := api.Ping(pctx); err != nil {
		api.Close()
		return nil, &UnreachableError{Host: d.Host, Err: dialCause(d.Host, err)}
	}
	api.NegotiateAPIVersion(ctx)
	return d, nil
}

// dialCause replaces the client's "Cannot connect to the Docker daemon"
// (which drops the cause) by the socket's own error: "dial unix
// /var/run/docker.sock: connect: permission denied" says what to fix.
func dialCause(host string, err error) error {
	if !client.IsErrConnectionFailed(err) {
		return err
	}
	network, addr, _ := strings.Cut(host, "://")
	if network == "unix" || network == "tcp" {
		c, derr := net.DialTimeout(network, addr, time.Second)
		if derr == nil {
			c.Close()
			return err
		}
		if errors.Is(derr, syscall.EACCES) {
			return fmt.Errorf("%w (add yourself to the docker group, or set DOCKER_HOST)", derr)
		}
		return derr
	}
	return errors.New("no Docker engine answers there")
}

// Close releases the connection.
func (d *Docker) Close() error { return d.API.Close() }

// ProjectName is the compose project name for root: COMPOSE_PROJECT_NAME
// from the environment or from root's .env file, else the base name of
// root, normalised as compose does (lower case, only [a-z0-9_-]).
func ProjectName(root string, getenv func(string) string) string {
	if getenv == nil {
		getenv = os.Getenv
	}
	name := getenv("COMPOSE_PROJECT_NAME")
	if name == "" {
		name = dotenvValue(filepath.Join(root, ".env"), "COMPOSE_PROJECT_NAME")
	}
	if name == "" {
		name = filepath.Base(root)
	}
	return NormalizeProjectName(name)
}

// NormalizeProjectName lower-cases name and drops characters compose does
// not allow in a project name.
func NormalizeProjectName(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			b.WriteRune(r)
		}
	}
	return strings.TrimLeft(b.String(), "_-")
}

// dotenvValue reads KEY=VALUE from a dotenv file, "" when absent.
func dotenvValue(path, key string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	val := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			val = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	return val
}

// Project is a compose project's containers as Docker reports them.
type Project struct {
	Name       string
	WorkingDir string
	Containers []container.Summary
}

// FindProject lists the containers of the compose project in root: those
// labelled with root as working_dir, else those labelled with the project
// name. all includes stopped containers. One-off containers
// (`docker compose run`) are left out. A project with no containers is
// returned empty, not as an error.
func (d *Docker) FindProject(ctx context.Context, root, name string, all bool) (*Project, error) {
	dirs := []string{filepath.Clean(root)}
	if real, err := filepath.EvalSymlinks(root); err == nil && real != dirs[0] {
		dirs = append(dirs, real)
	}
	for _, dir := range dirs {
		cs, err := d.list(ctx, all, LabelWorkingDir+"="+dir)
		if err != nil {
			return nil, err
		}
		if len(cs) > 0 {
			return &Project{Name: cs[0].Labels[LabelProject], WorkingDir: dir, Containers: cs}, nil
		}
	}
	cs, err := d.list(ctx, all, LabelProject+"="+name)
	if err != nil {
		return nil, err
	}
	p := &Project{Name: name, Containers: cs}
	if len(cs) > 0 {
		p.WorkingDir = cs[0].Labels[LabelWorkingDir]
	}
	return p, nil
}

func (d *Docker) list(ctx context.Context, all bool, label string) ([]container.Summary, error) {
	cs, err := d.API.ContainerList(ctx, container.ListOptions{All: all, Filters: filters.NewArgs(filters.Arg("label", label))})
	if err != nil {
		return nil, fmt.Errorf("listing containers (label %s) at %s: %w", label, d.Host, err)
	}
	out := cs[:0]
	for _, c := range cs {
		if c.Labels[LabelOneoff] == "True" {
			continue
		}
		out = append(out, c)
	}
	// Running first, then the newest: the container compose would use.
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := out[i].State == container.StateRunning, out[j].State == container.StateRunning
		if ri != rj {
			return ri
		}
		return out[i].Created > out[j].Created
	})
	return out, nil
}

// Service returns the first container of the first service named, or nil.
func (p *Project) Service(names ...string) *container.Summary {
	for _, n := range names {
		for i := range p.Containers {
			if p.Containers[i].Labels[LabelService] == n {
				return &p.Containers[i]
			}
		}
	}
	return nil
}

// Services lists the service names that have containers, sorted.
func (p *Project) Services() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range p.Containers {
		s := c.Labels[LabelService]
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// describe names the project for messages.
func (p *Project) describe(root string) string {
	return fmt.Sprintf("compose project %q (%s)", p.Name, root)
}

// routable reports whether ip is on a network this machine has an
// interface in, so it can be dialled directly (Linux with a local engine;
// not Docker Desktop's VM).
func routable(ip string) bool {
	addr := net.ParseIP(ip)
	if addr == nil {
		return false
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range ifaddrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.Contains(addr) {
			return true
		}
	}
	return false
}
