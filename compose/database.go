package compose

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/siteplex/siteplex/sites"
)

// Finder finds a compose project's database container through Docker. It
// implements sites.DockerFinder. The zero value is ready to use; it
// connects to Docker on each call.
type Finder struct {
	// Getenv reads the process environment (COMPOSE_PROJECT_NAME,
	// DOCKER_HOST is read by the client itself); nil = os.Getenv.
	Getenv func(string) string
}

var _ sites.DockerFinder = (*Finder)(nil)

// ProjectDatabase returns the database of the compose project in root
// (docs/docker.md, "The database"): its running database_default, db or postgres container (the
// service named by base's host first), reached on the port it publishes on
// the host, else on its own network address. ok is false when the project
// has no such container running. A Docker engine that does not answer
// gives an *UnreachableError.
func (f *Finder) ProjectDatabase(ctx context.Context, root string, base sites.DB) (sites.DB, bool, error) {
	getenv := f.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	d, err := Connect(ctx)
	if err != nil {
		return sites.DB{}, false, err
	}
	defer d.Close()
	p, err := d.FindProject(ctx, root, ProjectName(root, getenv), false)
	if err != nil {
		return sites.DB{}, false, err
	}
	services := DatabaseServices
	if h := strings.ToLower(base.Host); h != "" && sites.ComposeHost(h) {
		services = append([]string{h}, services...)
	}
	c := p.Service(services...)
	if c == nil {
		return sites.DB{}, false, nil
	}
	insp, err := d.API.ContainerInspect(ctx, c.ID)
	if err != nil {
		return sites.DB{}, false, fmt.Errorf("inspecting the database container of %s: %w", p.describe(root), err)
	}
	db, err := DatabaseFromContainer(insp, base)
	if err != nil {
		return sites.DB{}, false, err
	}
	return db, true, nil
}

// DatabaseFromContainer builds the URL of the PostgreSQL server in a
// database container. User, password and database come from its
// POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB (defaults: base's, else
// postgres, no password, the user's name). The address is the port it
// publishes on the host (as 127.0.0.1 when published on all addresses),
// else its address on its network with the container's own port.
func DatabaseFromContainer(insp container.InspectResponse, base sites.DB) (sites.DB, error) {
	name := strings.TrimPrefix(insp.Name, "/")
	env := map[string]string{}
	if insp.Config != nil {
		for _, kv := range insp.Config.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	_, pgUser := env["POSTGRES_USER"]
	_, pgDB := env["POSTGRES_DB"]
	if !pgUser && !pgDB {
		for k := range env {
			if strings.HasPrefix(k, "MYSQL_") || strings.HasPrefix(k, "MARIADB_") {
				return sites.DB{}, fmt.Errorf("database container %s runs MySQL/MariaDB: siteplex reads PostgreSQL and SQLite databases", name)
			}
		}
	}
	db := sites.DB{Driver: sites.Postgres, User: base.User, Password: base.Password, Database: base.Database, Params: base.Params}
	if v, ok := env["POSTGRES_USER"]; ok && v != "" {
		db.User = v
	}
	if db.User == "" {
		db.User = "postgres"
	}
	if v, ok := env["POSTGRES_PASSWORD"]; ok {
		db.Password = v
	}
	if v, ok := env["POSTGRES_DB"]; ok && v != "" {
		db.Database = v
	}
	if db.Database == "" {
		db.Database = db.User
	}
	inner := base.Port
	if inner == 0 {
		inner = 5432
	}
	if insp.NetworkSettings != nil {
		if host, port, ok := published(insp.NetworkSettings.Ports, inner); ok {
			db.Host, db.Port = host, port
			return db, nil
		}
		if ip := networkIP(insp.NetworkSettings.Networks); ip != "" {
			db.Host, db.Port = ip, inner
			return db, nil
		}
	}
	return sites.DB{}, fmt.Errorf("database container %s publishes no port for %d/tcp and has no network address: is it running? (or publish it: ports: [\"127.0.0.1:5432:%d\"])", name, inner, inner)
}

// published returns the host address for the container port inner/tcp:
// 127.0.0.1 for a binding on all addresses or on loopback, else the
// binding's own address.
func published(ports nat.PortMap, inner int) (string, int, bool) {
	bindings := ports[nat.Port(strconv.Itoa(inner)+"/tcp")]
	best, bestPort, rank := "", 0, 99
	for _, b := range bindings {
		p, err := strconv.Atoi(b.HostPort)
		if err != nil || p == 0 {
			continue
		}
		host, r := b.HostIP, 2
		switch b.HostIP {
		case "127.0.0.1":
			r = 0
		case "", "0.0.0.0", "::":
			host, r = "127.0.0.1", 1
		case "::1":
			r = 1
		}
		if r < rank {
			best, bestPort, rank = host, p, r
		}
	}
	return best, bestPort, rank < 99
}

// networkIP picks the container's address: one this machine can route to
// first, then any, in network-name order.
func networkIP(nets map[string]*network.EndpointSettings) string {
	names := make([]string, 0, len(nets))
	for n := range nets {
		names = append(names, n)
	}
	sort.Strings(names)
	first := ""
	for _, n := range names {
		ep := nets[n]
		if ep == nil || ep.IPAddress == "" {
			continue
		}
		if routable(ep.IPAddress) {
			return ep.IPAddress
		}
		if first == "" {
			first = ep.IPAddress
		}
	}
	return first
}
