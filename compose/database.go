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
// (docs/docker.md, "The database"): its running database_default, db, postgres, mysql or mariadb
// container (the service named by base's host first), reached on the port
// it publishes on the host, else on its own network address. ok is false when the project
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

// DatabaseFromContainer builds the URL of the database server in a
// container: PostgreSQL, or MySQL/MariaDB when the container's environment
// (MYSQL_*, MARIADB_*), its image or base says so. Credentials come from
// the container's environment where it sets them, else from base (see
// pgCredentials and mysqlCredentials). The address is the port it
// publishes on the host (as 127.0.0.1 when published on all addresses),
// else its address on its network with the container's own port.
func DatabaseFromContainer(insp container.InspectResponse, base sites.DB) (sites.DB, error) {
	name := strings.TrimPrefix(insp.Name, "/")
	env := map[string]string{}
	image := ""
	if insp.Config != nil {
		for _, kv := range insp.Config.Env {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		image = insp.Config.Image
	}
	var db sites.DB
	inner := base.Port
	if isMySQLContainer(env, image, base) {
		var err error
		if db, err = mysqlCredentials(name, env, base); err != nil {
			return sites.DB{}, err
		}
		if inner == 0 {
			inner = 3306
		}
	} else {
		db = pgCredentials(env, base)
		if inner == 0 {
			inner = 5432
		}
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
	return sites.DB{}, fmt.Errorf("database container %s publishes no port for %d/tcp and has no network address: is it running? (or publish it: ports: [\"127.0.0.1:%d:%d\"])", name, inner, inner, inner)
}

// isMySQLContainer reports whether a database container runs MySQL or
// MariaDB: base is a MySQL URL, or the container sets MYSQL_*/MARIADB_*
// and no POSTGRES_USER/POSTGRES_DB, or its image is mysql or mariadb.
func isMySQLContainer(env map[string]string, image string, base sites.DB) bool {
	if base.Driver == sites.MySQL {
		return true
	}
	if base.Driver == sites.Postgres {
		return false
	}
	_, pgUser := env["POSTGRES_USER"]
	_, pgDB := env["POSTGRES_DB"]
	if pgUser || pgDB {
		return false
	}
	for k := range env {
		if strings.HasPrefix(k, "MYSQL_") || strings.HasPrefix(k, "MARIADB_") {
			return true
		}
	}
	repo := image
	if i := strings.LastIndexByte(repo, '/'); i >= 0 {
		repo = repo[i+1:]
	}
	repo, _, _ = strings.Cut(repo, ":")
	repo, _, _ = strings.Cut(repo, "@")
	return repo == "mysql" || repo == "mariadb" || repo == "percona"
}

// pgCredentials are user, password and database of a PostgreSQL
// container: its POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB
// (defaults: base's, else postgres, no password, the user's name).
func pgCredentials(env map[string]string, base sites.DB) sites.DB {
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
	return db
}

// mysqlCredentials are user, password and database of a MySQL or MariaDB
// container, as its image's entrypoint creates them: MARIADB_USER (or
// MYSQL_USER) with MARIADB_PASSWORD (MYSQL_PASSWORD) when set, else base's
// user, else root with MARIADB_ROOT_PASSWORD (MYSQL_ROOT_PASSWORD, empty
// with *_ALLOW_EMPTY_*); the database is MARIADB_DATABASE (MYSQL_DATABASE),
// else base's. A password only in a *_FILE secret, or a random root
// password, cannot be read: the error says so.
func mysqlCredentials(name string, env map[string]string, base sites.DB) (sites.DB, error) {
	get := func(key string) (string, bool) {
		for _, prefix := range []string{"MARIADB_", "MYSQL_"} {
			if v, ok := env[prefix+key]; ok {
				return v, true
			}
		}
		return "", false
	}
	db := sites.DB{Driver: sites.MySQL, User: base.User, Password: base.Password, Database: base.Database, Params: base.Params}
	secret := func(what string) error {
		return fmt.Errorf("database container %s keeps the %s in a file (%s_FILE): siteplex cannot read it; give the URL with --db mysql://USER:PASSWORD@127.0.0.1:PORT/NAME", name, what, what)
	}
	if u, ok := get("USER"); ok && u != "" {
		db.User = u
		if p, ok := get("PASSWORD"); ok {
			db.Password = p
		} else if _, ok := get("PASSWORD_FILE"); ok {
			return sites.DB{}, secret("PASSWORD")
		}
	}
	if db.User == "" {
		db.User = "root"
	}
	if db.User == "root" {
		if p, ok := get("ROOT_PASSWORD"); ok {
			db.Password = p
		} else if _, ok := get("ROOT_PASSWORD_FILE"); ok && base.Password == "" {
			return sites.DB{}, secret("ROOT_PASSWORD")
		} else if v, ok := get("RANDOM_ROOT_PASSWORD"); ok && v != "" && v != "no" && base.Password == "" {
			return sites.DB{}, fmt.Errorf("database container %s has a random root password: set MYSQL_USER and MYSQL_PASSWORD (MARIADB_USER, MARIADB_PASSWORD) on it, or give the URL with --db mysql://USER:PASSWORD@127.0.0.1:PORT/NAME", name)
		}
	}
	if v, ok := get("DATABASE"); ok && v != "" {
		db.Database = v
	}
	if db.Database == "" {
		return sites.DB{}, fmt.Errorf("database container %s creates no database (MYSQL_DATABASE or MARIADB_DATABASE) and the project names none: name it in DATABASE_URL=mysql://USER:PASSWORD@HOST/NAME", name)
	}
	return db, nil
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
