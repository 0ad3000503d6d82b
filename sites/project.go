package sites

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/siteplex/siteplex/sites/django"
)

// Options are the global flags. Empty fields mean "not given".
type Options struct {
	Project      string // --project
	Config       string // --config
	EnvFile      string // --env-file
	DB           string // --db
	HostsFile    string // --hosts-file
	DomainFormat string // --domain-format
	// Python is --python: the interpreter for introspection and the
	// default command ("" = the config key python, else the default
	// search, see Project.Python).
	Python string
	// NoOverlay is --no-overlay (serve, ui): the overlay changes none of
	// the project's settings (see Project.OverlayEnabled).
	NoOverlay bool
	// Cwd is where siteplex was started ("" = os.Getwd()).
	Cwd string
	// Getenv reads the process environment (nil = os.Getenv).
	Getenv func(string) string
}

// Project is a located Django project with its configuration resolved.
type Project struct {
	Root   string
	Name   string
	Config *Config
	Env    *EnvFile
	Format DomainFormat
	// HostsFile is the hosts file to manage.
	HostsFile string
	// IsDjango is true when manage.py is in Root.
	IsDjango bool
	// Hints is what introspection reports about the site frameworks; nil
	// = unknown, the tables decide where the sites come from (source.go).
	// Set it before the first LoadSites; it is not changed afterwards.
	Hints *Hints
	opts  Options

	// django is the introspection's answer, asked once per Project.
	django djangoMemo
}

// StateDir is the project's .siteplex folder (pid files, logs, engine.json).
// Create it with EnsureStateDir, which adds its .gitignore.
func (p *Project) StateDir() string { return filepath.Join(p.Root, ".siteplex") }

// EnsureStateDir creates the .siteplex folder when missing, with a
// .gitignore holding "*" so it never shows in `git status`, and returns it.
// Every writer of .siteplex should create it through here.
func (p *Project) EnsureStateDir() (string, error) {
	dir := p.StateDir()
	return dir, django.MakeStateDir(dir)
}

// Getenv reads the process environment as given in Options.
func (p *Project) Getenv(k string) string { return p.opts.Getenv(k) }

// ForcedID is the SITE_ID in the env file, or 0.
func (p *Project) ForcedID() int64 {
	v := strings.TrimSpace(p.Env.Values["SITE_ID"])
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0
	}
	return id
}

// FindRoot returns the project root: dir itself when given, else the first
// folder from cwd upwards holding manage.py or .divio/config.json, else cwd.
func FindRoot(dir, cwd string) (string, error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return "", fmt.Errorf("project folder: %w", err)
		}
		st, err := os.Stat(abs)
		if err != nil || !st.IsDir() {
			return "", Usagef("--project %s: not a folder", dir)
		}
		return abs, nil
	}
	for d := cwd; ; {
		if fileExists(filepath.Join(d, "manage.py")) || fileExists(filepath.Join(d, ".divio", "config.json")) {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return cwd, nil
		}
		d = parent
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Load finds the project, reads its config and env file and resolves the
// domain format. It does not touch the database.
func Load(opts Options) (*Project, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.Cwd == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("current folder: %w", err)
		}
		opts.Cwd = wd
	}
	root, err := FindRoot(opts.Project, opts.Cwd)
	if err != nil {
		return nil, err
	}
	p := &Project{Root: root, opts: opts, Config: &Config{}}
	p.IsDjango = fileExists(filepath.Join(root, "manage.py"))

	cfgPath := opts.Config
	if cfgPath == "" && fileExists(filepath.Join(root, "siteplex.toml")) {
		cfgPath = filepath.Join(root, "siteplex.toml")
	}
	if cfgPath != "" {
		c, err := ReadConfig(cfgPath)
		if err != nil {
			return nil, err
		}
		p.Config = c
	}
	p.Name = p.Config.Name
	if p.Name == "" {
		p.Name = filepath.Base(root)
	}

	envPath := firstNonEmpty(opts.EnvFile, p.Config.EnvFile)
	switch {
	case envPath != "":
		if !filepath.IsAbs(envPath) {
			base := root
			if opts.EnvFile != "" {
				base = opts.Cwd
			}
			envPath = filepath.Join(base, envPath)
		}
	case fileExists(filepath.Join(root, ".env-local")):
		envPath = filepath.Join(root, ".env-local")
	case fileExists(filepath.Join(root, ".env")):
		envPath = filepath.Join(root, ".env")
	default:
		envPath = filepath.Join(root, ".env-local")
	}
	if p.Env, err = ReadEnvFile(envPath); err != nil {
		return nil, err
	}

	format := firstNonEmpty(opts.DomainFormat, p.Config.DomainFormat,
		p.Env.Values["DJANGO_MULTISITE_PLUS_REWRITE_DOMAIN_FORMAT"], DefaultDomainFormat)
	if p.Format, err = ParseDomainFormat(format); err != nil {
		return nil, err
	}
	p.HostsFile = firstNonEmpty(opts.HostsFile, p.Config.HostsFile, opts.Getenv("SITEPLEX_HOSTS_FILE"), "/etc/hosts")
	return p, nil
}

// NotAProjectError says siteplex was started outside a project (see
// NeedProject).
type NotAProjectError struct {
	// Where is the folder, with " or above" when it was searched upwards.
	Where string
}

func (e *NotAProjectError) Error() string {
	return "no manage.py in " + e.Where + ": run siteplex in your project folder or pass --project DIR"
}

// NeedProject returns a *NotAProjectError when p.Root is not a project
// siteplex can work on: no manage.py or .divio/config.json there (FindRoot
// looked upwards too), no siteplex.toml that declares sites or a database,
// no --db or SITEPLEX_DATABASE_URL, and no DATABASE_URL in an env file
// there (a DATABASE_URL in the environment alone does not make a folder a
// project). Commands that read sites or run the engine call it first,
// so that a stray folder gets no .siteplex/ and no endless "no database
// found" (docs/sites.md).
func (p *Project) NeedProject() error {
	if p.IsDjango || fileExists(filepath.Join(p.Root, ".divio", "config.json")) || p.opts.DB != "" ||
		len(p.Config.Sites) > 0 || (p.Config.Database != "" && !p.DatabaseOff()) ||
		p.opts.Getenv("SITEPLEX_DATABASE_URL") != "" || p.Env.Values["DATABASE_URL"] != "" {
		return nil
	}
	where := p.Root + " or above"
	if p.opts.Project != "" {
		where = p.Root
	}
	return &NotAProjectError{Where: where}
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// DatabaseSource resolves the configured database without Docker (in
// order: --db, the config's database, SITEPLEX_DATABASE_URL, DATABASE_URL,
// the env file's DATABASE_URL, DATABASES['default'] from the project's
// settings, db.sqlite3, data/db.sqlite3; docs/sites.md, docs/django.md). A
// DATABASE_URL (environment or env file) gives way to DATABASES['default']
// when the project's Django can be asked and names another database: the
// returned DB then says so in Note. ok is false when
// none applies; database = "none" in the config turns database reading off
// (ok false, ErrDatabaseOff). A compose-internal host in the URL is returned
// as is; the caller maps it through Docker (see ComposeHost). It may run the
// introspection (Python); use DatabaseSourceContext to bound that.
func (p *Project) DatabaseSource() (db DB, ok bool, err error) {
	return p.DatabaseSourceContext(context.Background())
}

// DatabaseSourceContext is DatabaseSource with a context for the
// introspection it may run.
func (p *Project) DatabaseSourceContext(ctx context.Context) (db DB, ok bool, err error) {
	return p.databaseSource(ctx, nil)
}

// databaseSource is DatabaseSourceContext; df, when not nil, maps compose
// hosts before a DATABASE_URL is compared with the settings' database.
func (p *Project) databaseSource(ctx context.Context, df DockerFinder) (db DB, ok bool, err error) {
	db, ok, err = p.namedDatabase()
	if err != nil {
		return db, ok, err
	}
	if ok {
		return p.checkDatabaseURL(ctx, db, df), true, nil
	}
	if p.DatabaseOff() {
		return DB{}, false, ErrDatabaseOff
	}
	if db, ok, err = p.settingsDatabase(ctx); ok || err != nil {
		return db, ok, err
	}
	return p.guessedDatabase()
}

// checkDatabaseURL returns db, named by a flag, the config or a variable,
// unless it came from a DATABASE_URL (the environment's or the env
// file's) and the project's settings use another database: Django reads
// its DATABASES, not that variable, so siteplex reads DATABASES['default']
// then, with a Note saying so. --db, the config's database and
// SITEPLEX_DATABASE_URL are explicit and always win. Settings that cannot
// be read leave db as it is.
func (p *Project) checkDatabaseURL(ctx context.Context, db DB, df DockerFinder) DB {
	if !strings.HasPrefix(db.Source, "DATABASE_URL") || !p.IsDjango {
		return db
	}
	sdb, ok, err := p.settingsDatabase(ctx)
	if err != nil || !ok || p.sameDatabase(ctx, db, sdb, df) {
		return db
	}
	sdb.Note = fmt.Sprintf("%s names %s, but the project's settings use %s (%s); reading that. Pass --db to override.",
		db.Source, p.shortDisplay(db), p.shortDisplay(sdb), sdb.Source)
	return sdb
}

// shortDisplay is Display with a SQLite path under the root made relative.
func (p *Project) shortDisplay(d DB) string {
	if d.Driver == SQLite {
		if rel, err := filepath.Rel(p.Root, d.Path); err == nil && !strings.HasPrefix(rel, "..") {
			return "sqlite " + rel
		}
	}
	return d.Display()
}

// sameDatabase reports whether a and b are one database: the same driver
// and SQLite file, or the same server (local hosts, loopback addresses
// and socket folders are one host; a missing port is the default) and
// database name. A compose service name that does not resolve is mapped
// through df first (when df is not nil), so a published port matches the
// service; users and passwords do not count.
func (p *Project) sameDatabase(ctx context.Context, a, b DB, df DockerFinder) bool {
	if a.Driver != b.Driver {
		return false
	}
	if a.Driver == SQLite {
		return samePath(a.Path, b.Path)
	}
	if a.Database != b.Database {
		return false
	}
	if serverKey(a) == serverKey(b) {
		return true
	}
	if df == nil {
		return false
	}
	mapped := func(d DB) DB {
		if !ComposeHost(d.Host) || resolves(ctx, d.Host) {
			return d
		}
		if c, found, err := df.ProjectDatabase(ctx, p.Root, d); err == nil && found {
			d.Host, d.Port = c.Host, c.Port
		}
		return d
	}
	return serverKey(mapped(a)) == serverKey(mapped(b))
}

// serverKey is "host:port" with every way of naming this machine
// (localhost, 127.0.0.1, ::1, an empty host, a unix socket folder) spelled
// "local".
func serverKey(d DB) string {
	h := strings.ToLower(strings.Trim(d.Host, "[]"))
	switch {
	case h == "", h == "localhost", strings.HasPrefix(h, "/"):
		h = "local"
	default:
		if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
			h = "local"
		}
	}
	port := d.Port
	if port == 0 {
		port = d.defaultPort()
	}
	return h + ":" + strconv.Itoa(port)
}

// samePath reports whether two SQLite paths name one file.
func samePath(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

// namedDatabase is the first database a flag, the config or a variable
// names.
func (p *Project) namedDatabase() (db DB, ok bool, err error) {
	type cand struct{ url, source string }
	conf := p.Config.Database
	if p.DatabaseOff() {
		conf = ""
	}
	cands := []cand{
		{p.opts.DB, "--db"},
		{conf, "database in " + filepath.Base(p.Config.Path)},
		{p.opts.Getenv("SITEPLEX_DATABASE_URL"), "SITEPLEX_DATABASE_URL"},
		{p.opts.Getenv("DATABASE_URL"), "DATABASE_URL"},
		{p.Env.Values["DATABASE_URL"], "DATABASE_URL in " + filepath.Base(p.Env.Path)},
	}
	for _, c := range cands {
		if c.url == "" {
			continue
		}
		db, err := ParseDatabaseURL(c.url, p.Root)
		if err != nil {
			return DB{}, false, fmt.Errorf("%s: %w", c.source, err)
		}
		db.Source = c.source
		return db, true, nil
	}
	return DB{}, false, nil
}

// guessedDatabase is db.sqlite3, then data/db.sqlite3, when it exists.
func (p *Project) guessedDatabase() (db DB, ok bool, err error) {
	for _, rel := range []string{"db.sqlite3", filepath.Join("data", "db.sqlite3")} {
		if fileExists(filepath.Join(p.Root, rel)) {
			return DB{Driver: SQLite, Path: filepath.Join(p.Root, rel), Source: rel}, true, nil
		}
	}
	return DB{}, false, nil
}

// ComposeHost reports whether h is a docker-compose service name that
// Django reaches inside the compose network (database_default, db,
// postgres, mysql, mariadb) rather than a host this machine can resolve.
func ComposeHost(h string) bool {
	switch strings.ToLower(h) {
	case "database_default", "db", "postgres", "mysql", "mariadb":
		return true
	}
	return false
}
