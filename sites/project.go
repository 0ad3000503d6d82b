package sites

import (
	"context"
	"fmt"
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
// settings, db.sqlite3, data/db.sqlite3; docs/sites.md, docs/django.md). ok is false when
// none applies; database = "none" in the config turns database reading off
// (ok false, ErrDatabaseOff). A compose-internal host in the URL is returned
// as is; the caller maps it through Docker (see ComposeHost). It may run the
// introspection (Python) when no URL names a database; use
// DatabaseSourceContext to bound that.
func (p *Project) DatabaseSource() (db DB, ok bool, err error) {
	return p.DatabaseSourceContext(context.Background())
}

// DatabaseSourceContext is DatabaseSource with a context for the
// introspection it may run.
func (p *Project) DatabaseSourceContext(ctx context.Context) (db DB, ok bool, err error) {
	db, ok, err = p.namedDatabase()
	if ok || err != nil {
		return db, ok, err
	}
	if p.DatabaseOff() {
		return DB{}, false, ErrDatabaseOff
	}
	if db, ok, err = p.settingsDatabase(ctx); ok || err != nil {
		return db, ok, err
	}
	return p.guessedDatabase()
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
