// Package doctor holds the checks of `siteplex doctor` (docs/doctor.md). Each
// check looks at one thing siteplex needs — the project, its config and env
// file, the database, what the project's Django says (django.go), Python,
// the proxy and HTTPS ports, the hosts file, Docker, *.localhost resolution
// and the local CA (https.go) — and returns a Check that says what it found
// and, when something is wrong, the fix.
//
// Checks never change anything: the ports are bound and released at once,
// the hosts file is tested with access(2), Docker is pinged.
package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/sites/django"
)

// Status is a check's outcome. Only Fail makes `siteplex doctor` exit 1.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Names of the checks, in the order doctor runs them. They are part of the
// --json contract.
const (
	NameProject    = "project"
	NameConfig     = "config"
	NameEnvFile    = "env_file"
	NameDatabase   = "database"
	NamePython     = "python"
	NameProxyPort  = "proxy_port"
	NameHTTPSPort  = "https_port"
	NameHostsFile  = "hosts_file"
	NameDocker     = "docker"
	NameResolution = "localhost_resolution"
)

// Check is the result of one check. The JSON field names are the contract
// of `siteplex doctor --json`; Fix is "" when there is nothing to do.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix"`
}

// Report is the whole doctor run.
type Report struct {
	// OK is false when any check failed (warnings do not count).
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// NewReport wraps checks and computes OK.
func NewReport(checks []Check) Report {
	r := Report{OK: true, Checks: checks}
	if r.Checks == nil {
		r.Checks = []Check{}
	}
	for _, c := range checks {
		if c.Status == Fail {
			r.OK = false
		}
	}
	return r
}

func ok(name, detail string) Check { return Check{Name: name, Status: OK, Detail: detail} }

func bad(name string, st Status, detail, fix string) Check {
	return Check{Name: name, Status: st, Detail: detail, Fix: fix}
}

// Project checks that root is a Django project: manage.py or
// .divio/config.json is there.
func Project(root string) Check {
	var found []string
	for _, m := range []string{"manage.py", filepath.Join(".divio", "config.json")} {
		if st, err := os.Stat(filepath.Join(root, m)); err == nil && !st.IsDir() {
			found = append(found, m)
		}
	}
	if len(found) == 0 {
		return bad(NameProject, Fail, fmt.Sprintf("no manage.py or .divio/config.json in %s", root),
			"run siteplex in the Django project's folder (where manage.py is), or pass --project DIR")
	}
	return ok(NameProject, fmt.Sprintf("%s (%s)", root, strings.Join(found, ", ")))
}

// Config reports on siteplex.toml and the domain format. loadErr is the
// error loading them gave (nil when they loaded).
func Config(p *sites.Project, loadErr error) Check {
	if loadErr != nil {
		return bad(NameConfig, Fail, loadErr.Error(),
			"fix the value named above in siteplex.toml, the env file or the command line flags")
	}
	cfg := "no siteplex.toml (defaults)"
	if p.Config.Path != "" {
		cfg = p.Config.Path
		if n := len(p.Config.Sites); n > 0 {
			cfg += fmt.Sprintf(" (%d declared sites)", n)
		}
	}
	return ok(NameConfig, fmt.Sprintf("%s; domain format %s", cfg, p.Format))
}

// EnvFile reads the env file at path: unreadable fails, lines that are not
// KEY=VALUE warn, a missing file is fine (siteplex creates .env-local when
// it needs to write SITE_ID).
func EnvFile(path string) Check {
	ef, err := sites.ReadEnvFile(path)
	if err != nil {
		return bad(NameEnvFile, Fail, fmt.Sprintf("cannot read %s: %v", path, errors.Unwrap(err)),
			"make the env file a readable file, or point siteplex at another one with --env-file")
	}
	if !ef.Exists() {
		return ok(NameEnvFile, fmt.Sprintf("no env file at %s (siteplex creates it when it needs to write SITE_ID)", path))
	}
	var keys []string
	for _, k := range []string{"DATABASE_URL", "SITE_ID", "DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT"} {
		if _, set := ef.Values[k]; set {
			keys = append(keys, k)
		}
	}
	detail := fmt.Sprintf("%s: %d variables", path, len(ef.Values))
	if len(keys) > 0 {
		detail += " (" + strings.Join(keys, ", ") + ")"
	}
	if len(ef.Warnings) > 0 {
		return bad(NameEnvFile, Warn, detail+"; "+strings.Join(ef.Warnings, "; "),
			"make each line KEY=VALUE, a # comment or blank; siteplex and Django's env readers skip the others")
	}
	return ok(NameEnvFile, detail)
}

// Found is what the database check read, for the other checks.
type Found struct {
	// Sites are the sites read (nil when none could be).
	Sites []sites.Site
	// Source is where they came from (nil when the database could not be
	// read).
	Source *sites.SourceInfo
	db     sites.DB
}

// Database resolves, opens and inspects the project's database. It returns
// the sites it read and their source for the other checks. A
// DATABASE_URL set aside for the settings' database (sites.DB.Note) makes
// an ok check a warning that says so.
func Database(ctx context.Context, p *sites.Project, df sites.DockerFinder) (Check, Found) {
	c, found := database(ctx, p, df)
	db := found.db
	if db.Note != "" {
		if c.Status == OK {
			c.Status = Warn
		}
		c.Detail += "; " + db.Note
		if c.Fix == "" {
			c.Fix = "remove the DATABASE_URL the project's settings do not read, or pass --db URL to read another database"
		}
	}
	return c, found
}

func database(ctx context.Context, p *sites.Project, df sites.DockerFinder) (Check, Found) {
	db, err := p.ResolveDB(ctx, df)
	if err != nil {
		if errors.Is(err, sites.ErrNoDatabase) && len(p.Config.Sites) > 0 {
			list, lerr := p.LoadSites(ctx, nil)
			if lerr == nil {
				return bad(NameDatabase, Warn, fmt.Sprintf("no database; using the %d sites declared in %s", len(list), p.Config.Path),
					"pass --db URL or set DATABASE_URL to read the sites from the database"), Found{Sites: list, Source: &sites.SourceInfo{Source: sites.SourceConfig}}
			}
		}
		fix := "pass --db URL, set DATABASE_URL in " + p.Env.Path + ", or declare the sites in siteplex.toml ([sites.<slug>] with domain)"
		if _, derr := p.Django(ctx); derr != nil && p.IsDjango {
			fix = "pass --db URL, set DATABASE_URL in " + p.Env.Path + ", or make the project's settings readable (see the django_settings check) so siteplex finds DATABASES['default']"
		}
		if errors.Is(err, sites.ErrDatabaseOff) {
			fix = "declare the sites in siteplex.toml ([sites.<slug>] with domain), or remove database = \"none\""
		}
		if sites.IsUsage(err) {
			fix = "fix the database URL (" + sites.DatabaseURLForms + ")"
		}
		var ce *sites.ComposeHostError
		if errors.As(err, &ce) {
			fix = composeHostFix(ce)
		}
		return bad(NameDatabase, Fail, err.Error(), fix), Found{db: db}
	}
	where := db.Display() + " (from " + db.Source + ")"
	st, err := sites.Open(ctx, db, false)
	if err != nil {
		fix := "check the URL (from " + db.Source + ") and that the database server is running"
		if db.Driver == sites.SQLite {
			fix = "check the path (from " + db.Source + "), or run `python manage.py migrate`"
		}
		var wp *sites.WrongProtocolError
		if errors.As(err, &wp) {
			fix = "fix the URL (from " + db.Source + "): its scheme (" + sites.DatabaseURLForms + ") must match the server at its host and port"
		}
		return bad(NameDatabase, Fail, err.Error(), fix), Found{db: db}
	}
	defer st.Close()
	t, err := st.Tables(ctx)
	if err != nil {
		return bad(NameDatabase, Fail, fmt.Sprintf("%s: %v", where, err), "check that the database user may read the tables"), Found{db: db}
	}
	mark := func(name string, present bool) string {
		if present {
			return name + " ✓"
		}
		return name + " absent"
	}
	tables := strings.Join([]string{mark("django_site", t.Site), mark("multisite_alias", t.Alias),
		mark("django_multisite_plus_site", t.Plus)}, ", ")
	list, src, err := p.LoadSitesSource(ctx, st)
	if err != nil {
		var nst *sites.NoSiteTableError
		if errors.As(err, &nst) {
			return bad(NameDatabase, Fail, where+": "+tables+"; "+err.Error(), noSiteTableFix(ctx, p, nst)), Found{db: db}
		}
		return bad(NameDatabase, Fail, fmt.Sprintf("%s: %s; reading the sites: %v", where, tables, err),
			"check the tables' contents, or point --db at the project's database"), Found{db: db}
	}
	found := Found{Sites: list, Source: &src, db: db}
	if src.Source == sites.SourceConfig && len(p.Config.Sites) > 0 {
		return ok(NameDatabase, fmt.Sprintf("%s: %s; using the %d sites declared in %s", where, tables, len(list), filepath.Base(p.Config.Path))), found
	}
	// Which framework the sites come from (the one that routes requests).
	tables = "sites from " + src.String() + "; " + tables
	for _, n := range src.Notes {
		tables += "; " + n
	}
	problems := 0
	for _, s := range list {
		if !s.Usable() {
			problems++
		}
	}
	detail := fmt.Sprintf("%s: %s; %d sites", where, tables, len(list))
	if problems > 0 {
		return bad(NameDatabase, Warn, fmt.Sprintf("%s, %d with problems", detail, problems),
			"`siteplex sites` lists each problem; sites with problems are not routed or written to the hosts file"), found
	}
	return ok(NameDatabase, detail), found
}

// composeHostFix is the fix for a database URL whose compose host
// siteplex could not map to a container.
func composeHostFix(ce *sites.ComposeHostError) string {
	switch {
	case ce.NoDocker:
		return fmt.Sprintf("publish the database's port in the compose file and pass --db %s://USER@127.0.0.1:PORT/%s", ce.Driver, ce.Database)
	case ce.Err != nil:
		return fmt.Sprintf("start Docker (sudo systemctl start docker), or set DOCKER_HOST to where it listens: siteplex reaches the compose host %q (from %s) through it; or pass --db %s://USER@127.0.0.1:PORT/%s with a published port",
			ce.Host, ce.Source, ce.Driver, ce.Database)
	}
	return fmt.Sprintf("start the project's database container: docker compose up -d %s (the compose host %q from %s)", ce.Host, ce.Host, ce.Source)
}

// noSiteTableFix is the fix for a database without the site tables the
// project's framework routes by (nst), right for the framework the
// settings install: siteplex reads django_site, wagtailcore_site and the
// tenant tables of django-tenants and django-pgschemas (docs/sites.md).
func noSiteTableFix(ctx context.Context, p *sites.Project, nst *sites.NoSiteTableError) string {
	const declare = "declare the sites in siteplex.toml ([sites.<slug>] with domain)"
	info, err := p.Django(ctx)
	if err != nil {
		return "run `python manage.py migrate`, point --db at the project's database, or " + declare
	}
	fw := info.Frameworks
	switch {
	case nst.Hint != "" && len(fw.Installed()) > 0:
		// The error names the framework and its migration command.
		return "run the migrations the message names, point --db at the project's database, or " + declare
	case fw.Sites:
		return "run `python manage.py migrate` (django.contrib.sites is installed but its table is missing), or point --db at the project's database"
	case len(fw.Installed()) > 0:
		return "run `python manage.py migrate` (" + strings.Join(fw.Installed(), ", ") + "), point --db at the project's database, or " + declare
	}
	return declare + ", or add django.contrib.sites to INSTALLED_APPS and run `python manage.py migrate`"
}

// PythonFor finds the interpreter siteplex would run manage.py with
// (--python, python in siteplex.toml, else the first of .venv/bin/python,
// venv/bin/python, python3 on PATH: django.FindPython) and asks it for its
// Django version. needed is false when the project's processes do not run
// Python on this machine (--runner docker, a custom command): then
// problems are warnings.
func PythonFor(ctx context.Context, p *sites.Project, needed bool) Check {
	py, from, err := p.Python()
	if err != nil && !errors.Is(err, django.ErrNoPython) {
		st := Fail
		if !needed {
			st = Warn
		}
		return bad(NamePython, st, err.Error(), "name an executable Python with --python or python in siteplex.toml")
	}
	return pythonAt(ctx, p.Root, py, from, needed)
}

func pythonAt(ctx context.Context, root, py, from string, needed bool) Check {
	st := Fail
	if !needed {
		st = Warn
	}
	if _, err := os.Stat(filepath.Join(root, "manage.py")); err != nil {
		return bad(NamePython, st, "no manage.py in "+root+", so siteplex cannot start the dev server",
			"run siteplex in the Django project's folder, or pass --project DIR")
	}
	if py == "" {
		return bad(NamePython, st, "no Python: none of .venv/bin/python, venv/bin/python, python3 on PATH",
			"create the project's virtualenv: python3 -m venv .venv && .venv/bin/pip install -r requirements.txt")
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", "import sys, django; print(sys.version.split()[0], django.get_version())")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		why := lastLine(stderr.String())
		if ctx.Err() != nil {
			why = "timed out after 20s"
		} else if why == "" {
			why = err.Error()
		}
		return bad(NamePython, st, fmt.Sprintf("%s cannot import Django: %s", py, why),
			fmt.Sprintf("install the project's requirements into that interpreter (%s -m pip install -r requirements.txt), or create .venv with them", py))
	}
	f := strings.Fields(string(out))
	if len(f) < 2 {
		return bad(NamePython, st, fmt.Sprintf("%s printed %q instead of its versions", py, out), "check the interpreter")
	}
	shown := py
	if rel, err := filepath.Rel(root, py); err == nil && !strings.HasPrefix(rel, "..") {
		shown = rel
	}
	if from != "" && from != shown {
		shown += " (" + from + ")"
	}
	return ok(NamePython, fmt.Sprintf("%s (Python %s), Django %s; manage.py found", shown, f[0], f[1]))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// HostsFile checks that the hosts file can be written by this process,
// with access(2) (effective ids), without opening or changing it.
func HostsFile(path string) Check {
	sudo := "sudo " + selfName() + " hosts apply"
	if path != "/etc/hosts" {
		sudo += " --hosts-file " + path
	}
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return bad(NameHostsFile, Fail, path+" does not exist", "create it (touch "+path+"), or point --hosts-file / SITEPLEX_HOSTS_FILE at the right file")
		}
		return bad(NameHostsFile, Fail, fmt.Sprintf("cannot inspect %s: %v", path, err), "run hosts commands with sudo: "+sudo)
	}
	if st.IsDir() {
		return bad(NameHostsFile, Fail, path+" is a folder", "point --hosts-file at the hosts file")
	}
	err = unix.Faccessat(unix.AT_FDCWD, path, unix.W_OK, unix.AT_EACCESS)
	switch {
	case err == nil:
	case errors.Is(err, unix.EROFS):
		return bad(NameHostsFile, Fail, path+" is on a read-only file system",
			"siteplex cannot change it here; on the host, or with the file mounted read-write, run: "+sudo)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return bad(NameHostsFile, Fail, fmt.Sprintf("%s is not writable by %s (mode %s)", path, whoami(), st.Mode().Perm()),
			"run hosts commands with sudo: "+sudo+" (siteplex never loosens the file's permissions)")
	default:
		return bad(NameHostsFile, Fail, fmt.Sprintf("cannot check %s: %v", path, err), "run hosts commands with sudo: "+sudo)
	}
	return ok(NameHostsFile, path+" is writable by "+whoami())
}

func whoami() string {
	uid := os.Geteuid()
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}

// selfName is how the user runs siteplex, for fix commands.
func selfName() string {
	exe, err := os.Executable()
	if err != nil || !strings.Contains(filepath.Base(exe), "siteplex") {
		return "siteplex"
	}
	if p, err := exec.LookPath("siteplex"); err == nil && p == exe {
		return "siteplex"
	}
	return exe
}

// DefaultDockerHost is where Docker listens when DOCKER_HOST is unset.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// Docker pings the engine at host (a DOCKER_HOST value; "" means the
// default socket) with GET /_ping. needed is true for projects that use
// Docker (a compose file, --runner docker): then an unreachable engine
// fails, else it warns.
func Docker(ctx context.Context, host string, needed bool) Check {
	if host == "" {
		host = DefaultDockerHost
	}
	st := Warn
	if needed {
		st = Fail
	}
	fix := "start Docker (sudo systemctl start docker), or set DOCKER_HOST to where it listens; only Docker features (compose database discovery, --runner docker) need it"
	u, err := url.Parse(host)
	if err != nil {
		return bad(NameDocker, st, fmt.Sprintf("Docker is not reachable at %s: %v", host, err), fix)
	}
	tr := &http.Transport{}
	base := ""
	switch u.Scheme {
	case "unix":
		sock := u.Path
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
		base = "http://docker"
	case "tcp", "http":
		base = "http://" + u.Host
	default:
		return bad(NameDocker, Warn, fmt.Sprintf("DOCKER_HOST %s: siteplex doctor checks unix:// and tcp:// engines only", host), "")
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	get := func(path string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return nil, err
		}
		return tr.RoundTrip(req)
	}
	resp, err := get("/_ping")
	if err != nil {
		return bad(NameDocker, st, fmt.Sprintf("Docker is not reachable at %s: %v", host, unwrapNet(err)), fix)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bad(NameDocker, st, fmt.Sprintf("Docker is not reachable at %s: /_ping answered %s", host, resp.Status), fix)
	}
	version := resp.Header.Get("Api-Version")
	detail := "Docker answers at " + host
	if version != "" {
		detail += " (API " + version + ")"
	}
	return ok(NameDocker, detail)
}

// unwrapNet shortens "Get \"http://docker/_ping\": dial unix ...: connect:
// no such file or directory" to the part a user needs.
func unwrapNet(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return fmt.Errorf("%s: %w", oe.Op, oe.Err)
	}
	return err
}

// Resolver is the part of *net.Resolver the resolution check uses.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Resolution checks that names resolve to loopback through r (normally
// net.DefaultResolver, which follows /etc/hosts and nsswitch). A name that
// resolves elsewhere fails: requests would leave the machine. A *.localhost
// name that does not resolve only warns: browsers map *.localhost to
// loopback themselves (RFC 6761), but curl, Python and others may not.
func Resolution(ctx context.Context, r Resolver, names []string) Check {
	fix := "add the local domains to the hosts file: sudo " + selfName() + " hosts apply --names local"
	var good, warn, fail []string
	for _, n := range names {
		lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		addrs, err := r.LookupIPAddr(lctx, n)
		cancel()
		if err != nil {
			msg := n + " does not resolve"
			var de *net.DNSError
			if !errors.As(err, &de) || !de.IsNotFound {
				msg = fmt.Sprintf("%s does not resolve (%v)", n, err)
			}
			if strings.HasSuffix(n, ".localhost") || n == "localhost" {
				warn = append(warn, msg)
			} else {
				fail = append(fail, msg)
			}
			continue
		}
		var other []string
		for _, a := range addrs {
			if !a.IP.IsLoopback() {
				other = append(other, a.IP.String())
			}
		}
		if len(other) > 0 {
			fail = append(fail, fmt.Sprintf("%s resolves to %s, not loopback", n, strings.Join(other, ", ")))
			continue
		}
		good = append(good, n)
	}
	var parts []string
	if len(good) > 0 {
		parts = append(parts, strings.Join(good, ", ")+" → loopback")
	}
	parts = append(append(parts, fail...), warn...)
	detail := strings.Join(parts, "; ")
	switch {
	case len(names) == 0:
		return ok(NameResolution, "no names to check")
	case len(fail) > 0:
		return bad(NameResolution, Fail, detail, fix)
	case len(warn) > 0:
		return bad(NameResolution, Warn, detail+" (browsers resolve *.localhost to loopback themselves; other tools use this resolver)", fix)
	}
	return ok(NameResolution, detail)
}

// errno returns the syscall.Errno inside err, or 0.
func errno(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}
