package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/siteplex/siteplex/compose/composetest"
	"github.com/siteplex/siteplex/internal/testenv"
	"github.com/siteplex/siteplex/sites"
)

func TestProjectName(t *testing.T) {
	tests := []struct {
		root, env, dotenv, want string
	}{
		{"/home/me/Acme Portal", "", "", "acmeportal"},
		{"/srv/my_project-2", "", "", "my_project-2"},
		{"/srv/x", "Custom", "", "custom"},
		{"/srv/x", "", "COMPOSE_PROJECT_NAME=fromdotenv\n", "fromdotenv"},
		{"/srv/x", "envwins", "COMPOSE_PROJECT_NAME=fromdotenv\n", "envwins"},
		{"/srv/.hidden", "", "", "hidden"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			root := tt.root
			if tt.dotenv != "" {
				root = filepath.Join(t.TempDir(), filepath.Base(tt.root))
				os.MkdirAll(root, 0o755)
				os.WriteFile(filepath.Join(root, ".env"), []byte(tt.dotenv), 0o644)
			}
			got := ProjectName(root, func(k string) string {
				if k == "COMPOSE_PROJECT_NAME" {
					return tt.env
				}
				return ""
			})
			if got != tt.want {
				t.Errorf("ProjectName(%q) = %q, want %q", tt.root, got, tt.want)
			}
		})
	}
}

func TestDatabaseFromContainer(t *testing.T) {
	inspect := func(env []string, ports nat.PortMap, ip string) container.InspectResponse {
		ns := &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{"acme_default": {IPAddress: ip}}}
		ns.Ports = ports
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{Name: "/acme-database_default-1"},
			Config:            &container.Config{Env: env},
			NetworkSettings:   ns,
		}
	}
	bind := func(ip, port string) nat.PortMap {
		return nat.PortMap{"5432/tcp": {{HostIP: ip, HostPort: port}}}
	}
	bind3306 := func(ip, port string) nat.PortMap {
		return nat.PortMap{"3306/tcp": {{HostIP: ip, HostPort: port}}}
	}
	inspectImage := func(image string, env []string, ip string) container.InspectResponse {
		insp := inspect(env, nil, ip)
		insp.Config.Image = image
		return insp
	}
	tests := []struct {
		name    string
		insp    container.InspectResponse
		base    sites.DB
		want    string // user:password@host:port/db
		wantErr string
	}{
		{"defaults, published on all addresses", inspect(nil, bind("0.0.0.0", "15432"), "172.18.0.2"), sites.DB{},
			"postgres:@127.0.0.1:15432/postgres", ""},
		{"POSTGRES_* and loopback binding", inspect([]string{"POSTGRES_USER=app", "POSTGRES_PASSWORD=pw", "POSTGRES_DB=db"}, bind("127.0.0.1", "5999"), "172.18.0.2"), sites.DB{},
			"app:pw@127.0.0.1:5999/db", ""},
		{"POSTGRES_DB defaults to the user", inspect([]string{"POSTGRES_USER=app"}, nil, "172.18.0.2"), sites.DB{},
			"app:@172.18.0.2:5432/app", ""},
		{"not published: network address", inspect([]string{"POSTGRES_DB=db", "POSTGRES_HOST_AUTH_METHOD=trust"}, nil, "172.18.0.2"), sites.DB{},
			"postgres:@172.18.0.2:5432/db", ""},
		{"base URL kept where the container is silent", inspect(nil, nil, "172.18.0.2"),
			sites.DB{User: "django", Password: "x", Database: "db", Host: "database_default", Port: 5432},
			"django:x@172.18.0.2:5432/db", ""},
		{"container env wins over base", inspect([]string{"POSTGRES_USER=app", "POSTGRES_PASSWORD=pw"}, nil, "172.18.0.2"),
			sites.DB{User: "django", Password: "x", Database: "db"},
			"app:pw@172.18.0.2:5432/db", ""},
		{"published on a specific address", inspect(nil, bind("192.0.2.10", "6000"), "172.18.0.2"), sites.DB{},
			"postgres:@192.0.2.10:6000/postgres", ""},
		{"no address", inspect(nil, nil, ""), sites.DB{}, "", "publishes no port"},

		// MySQL and MariaDB containers (their images' entrypoint variables).
		{"MySQL root", inspect([]string{"MYSQL_ROOT_PASSWORD=r00t", "MYSQL_DATABASE=shop"}, bind3306("0.0.0.0", "13306"), "172.18.0.3"), sites.DB{},
			"mysql root:r00t@127.0.0.1:13306/shop", ""},
		{"MySQL user", inspect([]string{"MYSQL_ROOT_PASSWORD=r00t", "MYSQL_USER=app", "MYSQL_PASSWORD=p@ss", "MYSQL_DATABASE=shop"}, nil, "172.18.0.3"), sites.DB{},
			"mysql app:p@ss@172.18.0.3:3306/shop", ""},
		{"MariaDB wins over MYSQL_", inspect([]string{"MARIADB_USER=m", "MARIADB_PASSWORD=mp", "MYSQL_USER=x", "MYSQL_PASSWORD=xp", "MARIADB_DATABASE=d"}, nil, "172.18.0.3"), sites.DB{},
			"mysql m:mp@172.18.0.3:3306/d", ""},
		{"MariaDB empty root password", inspect([]string{"MARIADB_ALLOW_EMPTY_ROOT_PASSWORD=1", "MARIADB_DATABASE=d"}, nil, "172.18.0.3"), sites.DB{},
			"mysql root:@172.18.0.3:3306/d", ""},
		{"MySQL base URL's user and database", inspect([]string{"MYSQL_ROOT_PASSWORD=r00t"}, nil, "172.18.0.3"),
			sites.DB{Driver: sites.MySQL, User: "django", Password: "dj", Database: "app", Host: "db"},
			"mysql django:dj@172.18.0.3:3306/app", ""},
		{"MySQL by image", inspectImage("mariadb:10.11", nil, "172.18.0.3"), sites.DB{Database: "app"},
			"mysql root:@172.18.0.3:3306/app", ""},
		{"MySQL no database", inspect([]string{"MYSQL_ROOT_PASSWORD=r00t"}, nil, "172.18.0.3"), sites.DB{}, "", "creates no database"},
		{"MySQL password in a secret", inspect([]string{"MYSQL_USER=app", "MYSQL_PASSWORD_FILE=/run/secrets/pw", "MYSQL_DATABASE=d"}, nil, "172.18.0.3"), sites.DB{},
			"", "keeps the PASSWORD in a file (PASSWORD_FILE)"},
		{"MySQL random root password", inspect([]string{"MYSQL_RANDOM_ROOT_PASSWORD=yes", "MYSQL_DATABASE=d"}, nil, "172.18.0.3"), sites.DB{},
			"", "has a random root password"},
		{"MySQL not published, no address", inspect([]string{"MYSQL_ROOT_PASSWORD=r00t", "MYSQL_DATABASE=d"}, nil, ""), sites.DB{}, "", "publishes no port for 3306/tcp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := DatabaseFromContainer(tt.insp, tt.base)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("%s:%s@%s:%d/%s", db.User, db.Password, db.Host, db.Port, db.Database)
			if db.Driver != sites.Postgres {
				got = string(db.Driver) + " " + got
			}
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestUnreachableDocker(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	_, ok, err := (&Finder{}).ProjectDatabase(context.Background(), t.TempDir(), sites.DB{})
	if ok || err == nil || !IsUnreachable(err) {
		t.Fatalf("ok=%v err=%v, want an UnreachableError", ok, err)
	}
	want := "Docker is not reachable at unix:///nonexistent/docker.sock: "
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q does not start with %q", err, want)
	}
	// Through the project: a compose host in DATABASE_URL says why.
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "manage.py"), nil, 0o644)
	os.WriteFile(filepath.Join(root, ".env-local"), []byte("DATABASE_URL=postgres://postgres@database_default:5432/db\n"), 0o644)
	_, _, err = resolveProject(t, root)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("ResolveDB: %v, want it to say %q", err, want)
	}
	// Without a compose host, the project works without Docker (SQLite).
	os.WriteFile(filepath.Join(root, ".env-local"), []byte("DATABASE_URL=sqlite:///db.sqlite3\n"), 0o644)
	_, db, err := resolveProject(t, root)
	if err != nil || db.Driver != sites.SQLite {
		t.Fatalf("ResolveDB without Docker: %+v %v", db, err)
	}
}

// resolveProject loads the project at root (no process environment) and
// resolves its database with a Docker Finder.
func resolveProject(t *testing.T, root string) (*sites.Project, sites.DB, error) {
	t.Helper()
	p, err := sites.Load(sites.Options{Project: root, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	db, err := p.ResolveDB(context.Background(), &Finder{})
	return p, db, err
}

// startDB runs the test PostgreSQL image as a compose project's
// database_default service.
func startDB(t *testing.T, d *Docker, project, root string, publish bool, env ...string) string {
	t.Helper()
	net := composetest.Network(t, d.API, project)
	labels := map[string]string{LabelProject: project, LabelService: "database_default",
		"com.docker.compose.container-number": "1", LabelOneoff: "False"}
	if root != "" {
		labels[LabelWorkingDir] = root
	}
	hc := &container.HostConfig{}
	if publish {
		hc.PortBindings = nat.PortMap{"5432/tcp": {{HostIP: "127.0.0.1", HostPort: ""}}}
	}
	name := project + "-database_default-1"
	return composetest.Run(t, d.API, name, &container.Config{Image: composetest.PostgresImage(t, d.API), Env: env, Labels: labels,
		ExposedPorts: nat.PortSet{"5432/tcp": {}}}, hc, net, "database_default")
}

// readSites opens db and reads its sites as `siteplex sites` would,
// retrying while the server starts.
func readSites(t *testing.T, p *sites.Project, db sites.DB) []sites.Site {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := sites.Open(ctx, db, false)
		if err == nil {
			list, err2 := p.LoadSites(ctx, st)
			st.Close()
			if err2 == nil {
				return list
			}
			err = err2
		}
		if time.Now().After(deadline) {
			t.Fatalf("reading sites from %s: %v", db.Display(), err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func slugs(list []sites.Site) string {
	var s []string
	for _, x := range list {
		s = append(s, fmt.Sprintf("%d:%s", x.ID, x.Slug))
	}
	return strings.Join(s, ",")
}

func TestFinderReadsDatabaseInContainer(t *testing.T) {
	d := dockerT(t)
	tests := []struct {
		name      string
		publish   bool
		workLabel bool
	}{
		{"published port, found by working_dir", true, true},
		{"no published port, found by project name", false, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), fmt.Sprintf("Acme_Portal%d", i))
			os.MkdirAll(root, 0o755)
			os.WriteFile(filepath.Join(root, "manage.py"), nil, 0o644)
			project := ProjectName(root, func(string) string { return "" })
			label := ""
			if tt.workLabel {
				label = root
			}
			id := startDB(t, d, project, label, tt.publish, "POSTGRES_PASSWORD="+composetest.PGPassword, "POSTGRES_DB=db")
			// Nothing configured: the container is found by itself.
			p, db, err := resolveProject(t, root)
			if err != nil {
				t.Fatalf("ResolveDB: %v\n%s", err, composetest.Logs(d.API, id))
			}
			insp, _ := d.API.ContainerInspect(context.Background(), id)
			if tt.publish {
				want := insp.NetworkSettings.Ports["5432/tcp"][0].HostPort
				if db.Host != "127.0.0.1" || fmt.Sprint(db.Port) != want {
					t.Errorf("db at %s, want 127.0.0.1:%s", db.HostPort(), want)
				}
			} else {
				want := insp.NetworkSettings.Networks[project+"_default"].IPAddress
				if db.Host != want || db.Port != 5432 {
					t.Errorf("db at %s, want %s:5432", db.HostPort(), want)
				}
			}
			if db.User != "postgres" || db.Database != "db" || db.Source != "docker-compose container" {
				t.Errorf("db = %s user %s source %q", db.Display(), db.User, db.Source)
			}
			if got := slugs(readSites(t, p, db)); got != "1:example-com,2:gh,3:de" {
				t.Errorf("sites = %s\n%s", got, composetest.Logs(d.API, id))
			}
		})
	}
}

func TestComposeHostInDatabaseURL(t *testing.T) {
	d := dockerT(t)
	root := filepath.Join(t.TempDir(), "divio-project")
	os.MkdirAll(root, 0o755)
	os.WriteFile(filepath.Join(root, "manage.py"), nil, 0o644)
	// Divio's .env-local: the host only resolves inside the compose network.
	os.WriteFile(filepath.Join(root, ".env-local"), []byte("DATABASE_URL=postgres://postgres:"+composetest.PGPassword+"@database_default:5432/db\nDEBUG=True\n"), 0o644)
	id := startDB(t, d, "divio-project", root, false, "POSTGRES_PASSWORD="+composetest.PGPassword, "POSTGRES_DB=db")
	p, db, err := resolveProject(t, root)
	if err != nil {
		t.Fatalf("ResolveDB: %v\n%s", err, composetest.Logs(d.API, id))
	}
	if db.Source != "DATABASE_URL in .env-local via Docker" || db.Host == "database_default" {
		t.Errorf("db = %s from %q", db.Display(), db.Source)
	}
	if got := slugs(readSites(t, p, db)); got != "1:example-com,2:gh,3:de" {
		t.Errorf("sites = %s", got)
	}

	// A wrong password in the URL is reported, not hidden.
	os.WriteFile(filepath.Join(root, ".env-local"), []byte("DATABASE_URL=postgres://postgres:wrong@database_default:5432/db\n"), 0o644)
	// The container says POSTGRES_PASSWORD, which wins: still readable.
	_, db, err = resolveProject(t, root)
	if err != nil || db.Password != composetest.PGPassword {
		t.Fatalf("container's POSTGRES_PASSWORD should win: %v", err)
	}
}

func TestFinderNoContainer(t *testing.T) {
	dockerT(t)
	root := t.TempDir()
	_, ok, err := (&Finder{}).ProjectDatabase(context.Background(), root, sites.DB{})
	if ok || err != nil {
		t.Fatalf("ok=%v err=%v, want not found", ok, err)
	}
	os.WriteFile(filepath.Join(root, ".env-local"), []byte("DATABASE_URL=postgres://postgres@database_default:5432/db\n"), 0o644)
	_, _, err = resolveProject(t, root)
	if err == nil || !strings.Contains(err.Error(), "docker compose up -d database_default") {
		t.Fatalf("err = %v", err)
	}
}

// BenchmarkFinderUnreachable is what a project without Docker pays when
// siteplex looks for a compose database: a failed connect to the socket.
func BenchmarkFinderUnreachable(b *testing.B) {
	b.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	root := b.TempDir()
	for b.Loop() {
		(&Finder{}).ProjectDatabase(context.Background(), root, sites.DB{})
	}
}

// BenchmarkFinderNoContainer is a lookup against a running engine for a
// project with no compose containers (ping, two container listings).
func BenchmarkFinderNoContainer(b *testing.B) {
	testenv.StartDocker(b)
	root := b.TempDir()
	for b.Loop() {
		if _, ok, err := (&Finder{}).ProjectDatabase(context.Background(), root, sites.DB{}); ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
