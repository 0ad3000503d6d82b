// Package composetest builds what siteplex's Docker tests run: a scratch
// image with a static siteplex binary (`siteplex demo-site` as the site
// server), a scratch image with this machine's PostgreSQL 15 server and a
// Django sites database, compose-style networks and containers. Everything
// it makes is removed when the test ends (containers, networks) or when
// the test binary ends (images, via testenv.StopDocker).
package composetest

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/siteplex/siteplex/internal/testenv"
)

// rootfs is an in-memory tar of a container's files.
type rootfs struct {
	buf  bytes.Buffer
	tw   *tar.Writer
	dirs map[string]bool
}

func newRootfs() *rootfs {
	r := &rootfs{dirs: map[string]bool{}}
	r.tw = tar.NewWriter(&r.buf)
	return r
}

func (r *rootfs) dir(p string, mode int64, uid int) error {
	p = strings.Trim(p, "/")
	if p == "" || p == "." || r.dirs[p] {
		return nil
	}
	if err := r.dir(filepath.Dir(p), 0o755, 0); err != nil {
		return err
	}
	r.dirs[p] = true
	return r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: time.Now()})
}

func (r *rootfs) file(p string, data []byte, mode int64, uid int) error {
	p = strings.Trim(p, "/")
	if err := r.dir(filepath.Dir(p), 0o755, 0); err != nil {
		return err
	}
	if err := r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), Uid: uid, Gid: uid, ModTime: time.Now()}); err != nil {
		return err
	}
	_, err := r.tw.Write(data)
	return err
}

// copyFile adds host file src at dst (symlinks followed).
func (r *rootfs) copyFile(src, dst string, uid int) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	return r.file(dst, b, int64(st.Mode().Perm()), uid)
}

// copyTree adds the host folder src at dst, owned by uid.
func (r *rootfs) copyTree(src, dst string, uid int) error {
	return filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if de.IsDir() {
			st, err := de.Info()
			if err != nil {
				return err
			}
			return r.dir(target, int64(st.Mode().Perm()), uid)
		}
		return r.copyFile(p, target, uid)
	})
}

// importImage imports the rootfs as image ref with Dockerfile changes and
// registers its removal.
func importImage(t testing.TB, api *client.Client, r *rootfs, ref string, changes []string) {
	t.Helper()
	if err := r.tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rc, err := api.ImageImport(ctx, image.ImportSource{Source: &r.buf, SourceName: "-"}, ref, image.ImportOptions{Changes: changes})
	if err != nil {
		t.Fatalf("importing image %s: %v", ref, err)
	}
	out, _ := io.ReadAll(rc)
	rc.Close()
	if bytes.Contains(out, []byte(`"errorDetail"`)) {
		t.Fatalf("importing image %s: %s", ref, out)
	}
	testenv.AtDockerStop(func() {
		api.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
}

var (
	pgOnce sync.Once
	pgRef  string
	pgErr  error

	webOnce sync.Once
	webRef  string
	webErr  error
)

// PGPassword is the superuser password baked into the test database image.
const PGPassword = "s3cret"

// pgUID is the non-root user the database runs as in its container.
const pgUID = 999

// PostgresImage builds (once) a scratch image holding this machine's PostgreSQL
// 15 server, the libraries ldd lists, its share files and a data folder
// made here with initdb: superuser postgres (password PGPassword, scram
// over TCP), database "db" holding django_site and
// django_multisite_plus_site with three sites.
func PostgresImage(t testing.TB, api *client.Client) string {
	t.Helper()
	pgOnce.Do(func() { pgRef, pgErr = buildPGImage(t, api) })
	if pgErr != nil {
		testenv.Missing(t, "PostgreSQL image: %v", pgErr)
	}
	return pgRef
}

const pgBin = "/usr/lib/postgresql/15/bin"

const pgFixture = `CREATE TABLE django_site (id serial NOT NULL PRIMARY KEY, domain varchar(100) NOT NULL UNIQUE, name varchar(50) NOT NULL);
CREATE TABLE django_multisite_plus_site (site_id integer NOT NULL PRIMARY KEY REFERENCES django_site (id), real_domain varchar(255) NOT NULL, slug varchar(255) NOT NULL UNIQUE, is_enabled boolean NOT NULL, last_updated_at timestamp with time zone NOT NULL, extra_uwsgi_ini text NOT NULL);
INSERT INTO django_site (id, domain, name) VALUES (1, 'example.com', 'Example'), (2, 'gh.localhost', 'Ghana'), (3, 'de.localhost', 'Germany');
INSERT INTO django_multisite_plus_site VALUES (2, 'www.example.gh', 'gh', true, now(), ''), (3, 'www.example.de', 'de', true, now(), '');
`

func buildPGImage(t testing.TB, api *client.Client) (string, error) {
	if _, err := os.Stat(pgBin + "/postgres"); err != nil {
		return "", fmt.Errorf("PostgreSQL 15 server not installed (apt-get install postgresql-15): %w", err)
	}
	dir, err := os.MkdirTemp("", "sppg-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	as := func(argv ...string) []string { return argv }
	if os.Geteuid() == 0 {
		if err := exec.Command("chown", "postgres", dir).Run(); err != nil {
			return "", fmt.Errorf("chown to postgres: %w", err)
		}
		as = func(argv ...string) []string {
			return append([]string{"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"}, argv...)
		}
	}
	run := func(stdin string, argv ...string) error {
		argv = as(argv...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
		if strings.Contains(string(out), "ERROR:") {
			return fmt.Errorf("%s: %s", strings.Join(argv, " "), out)
		}
		return nil
	}
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte(PGPassword+"\n"), 0o644)
	data := filepath.Join(dir, "data")
	if err := run("", pgBin+"/initdb", "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile="+pw, "--wal-segsize=1", "--no-sync"); err != nil {
		return "", err
	}
	if err := run("CREATE DATABASE db;\n", pgBin+"/postgres", "--single", "-D", data, "-c", "exit_on_error=on", "postgres"); err != nil {
		return "", err
	}
	if err := run(pgFixture, pgBin+"/postgres", "--single", "-D", data, "-c", "exit_on_error=on", "db"); err != nil {
		return "", err
	}
	hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return "", err
	}
	hba.WriteString("host all all all scram-sha-256\n")
	hba.Close()

	r := newRootfs()
	r.dir("tmp", 0o1777, 0)
	r.file("etc/passwd", []byte("root:x:0:0:root:/:/bin/false\npostgres:x:999:999:PostgreSQL:/data:/bin/false\n"), 0o644, 0)
	r.file("etc/group", []byte("root:x:0:\npostgres:x:999:\n"), 0o644, 0)
	if err := r.copyFile(pgBin+"/postgres", pgBin+"/postgres", 0); err != nil {
		return "", err
	}
	// The server checks its library folder at start; plpgsql is the one
	// library a fresh cluster refers to.
	if err := r.copyFile("/usr/lib/postgresql/15/lib/plpgsql.so", "/usr/lib/postgresql/15/lib/plpgsql.so", 0); err != nil {
		return "", err
	}
	libs, err := lddLibs(pgBin + "/postgres")
	if err != nil {
		return "", err
	}
	for _, l := range libs {
		if err := r.copyFile(l, l, 0); err != nil {
			return "", err
		}
	}
	for _, tree := range [][2]string{{"/usr/share/postgresql/15", "/usr/share/postgresql/15"}} {
		if err := r.copyTree(tree[0], tree[1], 0); err != nil {
			return "", err
		}
	}
	for _, z := range []string{"/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/Etc/UTC"} {
		if err := r.copyFile(z, z, 0); err != nil {
			return "", err
		}
	}
	if err := r.copyTree(data, "/data", pgUID); err != nil {
		return "", err
	}
	ref := fmt.Sprintf("siteplex-test-postgres:%d", time.Now().UnixNano())
	importImage(t, api, r, ref, []string{
		"USER 999:999",
		"ENV PGDATA=/data",
		fmt.Sprintf(`CMD ["%s/postgres", "-D", "/data", "-c", "listen_addresses=*", "-c", "unix_socket_directories=/tmp", "-c", "fsync=off"]`, pgBin),
		"EXPOSE 5432",
	})
	return ref, nil
}

// lddLibs lists the shared libraries (and the loader) bin needs.
func lddLibs(bin string) ([]string, error) {
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", bin, err)
	}
	var libs []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		}
	}
	return libs, nil
}

// WebImage builds (once) a scratch image holding a static siteplex binary
// at /siteplex; `siteplex demo-site` is the site server.
func WebImage(t testing.TB, api *client.Client) string {
	t.Helper()
	webOnce.Do(func() { webRef, webErr = buildWebImage(t, api) })
	if webErr != nil {
		t.Fatalf("siteplex image: %v", webErr)
	}

	return webRef
}

func buildWebImage(t testing.TB, api *client.Client) (string, error) {
	dir, err := os.MkdirTemp("", "spweb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "siteplex")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "github.com/siteplex/siteplex/cmd/siteplex")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building a static siteplex: %v: %s", err, out)
	}
	r := newRootfs()
	r.dir("tmp", 0o1777, 0)
	r.dir("app", 0o755, 0)
	r.file("etc/passwd", []byte("root:x:0:0:root:/:/bin/false\nnobody:x:65534:65534:nobody:/:/bin/false\n"), 0o644, 0)
	if err := r.copyFile(bin, "/siteplex", 0); err != nil {
		return "", err
	}
	ref := fmt.Sprintf("siteplex-test-web:%d", time.Now().UnixNano())
	importImage(t, api, r, ref, []string{"WORKDIR /app", "ENV PYTHONUNBUFFERED=0", `CMD ["/siteplex", "demo-site"]`})
	return ref, nil
}

// Network creates a compose-style network "<project>_default" and
// removes it when the test ends.
func Network(t testing.TB, api *client.Client, project string) string {
	t.Helper()
	name := project + "_default"
	ctx := context.Background()
	_, err := api.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge",
		Labels: map[string]string{"com.docker.compose.project": project, "com.docker.compose.network": "default"}})
	if err != nil {
		t.Fatalf("creating network %s: %v", name, err)
	}
	t.Cleanup(func() { api.NetworkRemove(context.Background(), name) })
	return name
}

// Run creates and starts a container and removes it (and
// anything it left) when the test ends, even when the test fails.
func Run(t testing.TB, api *client.Client, name string, cfg *container.Config, hc *container.HostConfig, netName string, aliases ...string) string {
	t.Helper()
	ctx := context.Background()
	var nc *network.NetworkingConfig
	if netName != "" {
		hc.NetworkMode = container.NetworkMode(netName)
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {Aliases: aliases}}}
	}
	c, err := api.ContainerCreate(ctx, cfg, hc, nc, nil, name)
	if err != nil {
		t.Fatalf("creating container %s: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of container %s:\n%s", name, Logs(api, name))
		}
		Remove(api, name)
	})
	if err := api.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting container %s: %v", name, err)
	}
	return c.ID
}

// Remove force-removes a container by name (whatever its id is now:
// single mode recreates it).
func Remove(api *client.Client, name string) {
	api.ContainerRemove(context.Background(), name, container.RemoveOptions{Force: true})
}

// Logs returns a container's output, for failure messages.
func Logs(api *client.Client, id string) string {
	rc, err := api.ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}
