package sites

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/siteplex/siteplex/sites/django"
)

// ErrDatabaseOff means database = "none" in siteplex.toml: siteplex reads
// no database, only the sites the config declares. It wraps ErrNoDatabase.
var ErrDatabaseOff = fmt.Errorf("%w: database reading is off (database = \"none\" in siteplex.toml)", ErrNoDatabase)

// DatabaseOff reports whether the config says database = "none".
func (p *Project) DatabaseOff() bool {
	return strings.EqualFold(strings.TrimSpace(p.Config.Database), "none") && p.opts.DB == ""
}

// OverlayEnabled reports whether the overlay may change the settings: not
// with --no-overlay, nor with overlay = false in siteplex.toml. When it is
// off, the engine still loads the overlay in django.ProbeOnly mode, so the
// identity probe can tell which site each process serves (docs/django.md).
func (p *Project) OverlayEnabled() bool {
	if p.opts.NoOverlay {
		return false
	}
	return p.Config.Overlay == nil || *p.Config.Overlay
}

// OverlayDir is where the overlay settings module is written:
// .siteplex/overlay.
func (p *Project) OverlayDir() string { return filepath.Join(p.StateDir(), "overlay") }

// Python returns the interpreter for introspection and the default
// dev-server command, and where it came from: --python, else python in
// siteplex.toml, else .venv/bin/python, venv/bin/python, python3 on PATH.
func (p *Project) Python() (path, from string, err error) {
	switch {
	case p.opts.Python != "":
		return django.FindPython(p.Root, p.opts.Python, "--python", p.opts.Cwd)
	case p.Config.Python != "":
		return django.FindPython(p.Root, p.Config.Python, "python in "+filepath.Base(p.Config.Path), p.Root)
	}
	return django.FindPython(p.Root, "", "", p.Root)
}

// djangoMemo holds a failure of the introspection that is not worth
// retrying within one Project's life (a timeout, an interpreter that does
// not run): everything else is asked again each time, which costs a few
// stat calls while .siteplex/django.json is valid, so a long-running engine
// sees settings edits.
type djangoMemo struct {
	mu   sync.Mutex // guards the fields below
	done bool
	err  error
}

// DjangoReport is the introspection's answer with how it was obtained.
type DjangoReport struct {
	Info    *django.Info
	Outcome django.Outcome
	// Python is the interpreter that ran (or would run) and where it came
	// from.
	Python, PythonFrom string
	// Guess is what siteplex found without Python.
	Guess django.SettingsGuess
}

// Django asks the project's Django about itself (docs/django.md): from the
// cache in .siteplex/django.json when nothing it depends on changed, else
// by running the embedded script. The error is a *django.Error (one line: what ran, the last line of
// the traceback), django.ErrNoPython, or a settings-module problem.
func (p *Project) Django(ctx context.Context) (*django.Info, error) {
	r, err := p.DjangoReport(ctx)
	return r.Info, err
}

// DjangoReport is Django with the details doctor shows.
func (p *Project) DjangoReport(ctx context.Context) (DjangoReport, error) {
	p.django.mu.Lock()
	defer p.django.mu.Unlock()
	rep := DjangoReport{Guess: p.settingsGuess()}
	py, from, perr := p.Python()
	rep.Python, rep.PythonFrom = py, from
	if p.django.done {
		return rep, p.django.err
	}
	info, out, err := p.loadDjango(ctx, py, perr, rep.Guess)
	if e, ok := django.IsError(err); ok && (e.Stage == "timeout" || e.Stage == "python") && ctx.Err() == nil {
		p.django.done, p.django.err = true, err
	}
	rep.Info, rep.Outcome = info, out
	return rep, err
}

func (p *Project) settingsGuess() django.SettingsGuess {
	return django.GuessSettings(p.Root, p.Env.Values["DJANGO_SETTINGS_MODULE"], filepath.Base(p.Env.Path), p.opts.Getenv("DJANGO_SETTINGS_MODULE"))
}

func (p *Project) loadDjango(ctx context.Context, py string, perr error, g django.SettingsGuess) (*django.Info, django.Outcome, error) {
	if perr != nil {
		return nil, django.Outcome{}, perr
	}
	if !p.IsDjango {
		return nil, django.Outcome{}, fmt.Errorf("no manage.py in %s: not a Django project siteplex can ask", p.Root)
	}
	if g.Module == "" && !g.ManagePyMentions {
		return nil, django.Outcome{}, fmt.Errorf("no settings module: DJANGO_SETTINGS_MODULE is not set and manage.py does not set it; set it in %s", filepath.Base(p.Env.Path))
	}
	return django.Load(ctx, django.CacheRequest{
		Request: django.Request{Root: p.Root, Python: py, Env: p.processEnv(), Guess: g.Module},
		File:    filepath.Join(p.StateDir(), "django.json"),
		EnvFile: p.Env.Path,
		KeyDir:  django.DefaultKeyDir(p.opts.Getenv),
	})
}

// processEnv is the environment a dev process gets, before the engine's
// own variables: siteplex's environment, then the env file's variables,
// then [process] env from siteplex.toml.
func (p *Project) processEnv() []string {
	env := os.Environ()
	for _, k := range sortedKeys(p.Env.Values) {
		env = append(env, k+"="+p.Env.Values[k])
	}
	for _, k := range sortedKeys(p.Config.Process.Env) {
		env = append(env, k+"="+p.Config.Process.Env[k])
	}
	return env
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// WriteOverlay writes the overlay settings module for the project into
// OverlayDir (introspecting first when needed) and returns it; the engine
// calls it before starting processes.
func (p *Project) WriteOverlay(ctx context.Context) (*django.Overlay, error) {
	info, err := p.Django(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := p.EnsureStateDir(); err != nil {
		return nil, err
	}
	return django.Write(p.OverlayDir(), info)
}

// settingsDatabase is DATABASES['default'] from the project's settings.
// ok is false when Django could not be asked: the heuristics apply then.
func (p *Project) settingsDatabase(ctx context.Context) (DB, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, django.DefaultTimeout+5*time.Second)
	defer cancel()
	info, err := p.Django(ctx)
	if err != nil {
		return DB{}, false, nil
	}
	d, ok := info.Databases["default"]
	if !ok {
		return DB{}, false, fmt.Errorf("%s has no DATABASES['default']", info.SettingsModule)
	}
	db, err := p.dbFromSettings(d)
	if err != nil {
		return DB{}, false, fmt.Errorf("DATABASES['default'] in %s: %w", info.SettingsModule, err)
	}
	db.Source = "DATABASES['default'] in " + info.SettingsModule
	return db, true, nil
}

// dbFromSettings turns a DATABASES entry into a DB the way Django and its
// drivers read it: a relative SQLite NAME from the project root (where
// manage.py runs); for PostgreSQL, empty fields from the libpq variables
// (PGHOST, PGPORT, PGUSER, PGPASSWORD) the dev process would see, and an
// empty host as libpq's default unix socket when one exists.
func (p *Project) dbFromSettings(d django.Database) (DB, error) {
	env := p.processEnvMap()
	switch d.Family() {
	case django.FamilySQLite:
		name := d.Name
		switch {
		case name == "" || name == ":memory:" || strings.HasPrefix(name, "file::memory:"):
			return DB{}, Usagef("%s is an in-memory SQLite database: there are no sites to read; pass --db", d.Engine)
		case strings.HasPrefix(name, "file:"):
			u, err := url.Parse(name)
			if err != nil {
				return DB{}, Usagef("SQLite NAME %q is not a file URI", name)
			}
			name = u.Path
		}
		if !filepath.IsAbs(name) {
			name = filepath.Join(p.Root, name)
		}
		return DB{Driver: SQLite, Path: name}, nil
	case django.FamilyPostgres:
		db := DB{Driver: Postgres, Host: d.Host, User: d.User, Password: d.Password, Database: d.Name, Params: url.Values{}}
		port := d.Port
		if db.Host == "" {
			db.Host = env["PGHOST"]
		}
		if port == "" {
			port = env["PGPORT"]
		}
		if db.User == "" {
			db.User = env["PGUSER"]
		}
		if db.Password == "" {
			db.Password = env["PGPASSWORD"]
		}
		if db.Database == "" {
			db.Database = env["PGDATABASE"]
		}
		if port != "" {
			n, err := strconv.Atoi(port)
			if err != nil || n <= 0 || n > 65535 {
				return DB{}, Usagef("PORT %q is not a port number", port)
			}
			db.Port = n
		}
		if db.Host == "" {
			db.Host = pgSocketDir(db.Port)
		}
		if db.Database == "" {
			return DB{}, Usagef("NAME is empty")
		}
		for k, v := range d.Options {
			switch k {
			case "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name", "target_session_attrs", "service", "passfile":
				db.Params.Set(k, fmt.Sprint(v))
			case "options":
				// "-c search_path=x" is how Django projects pick a schema.
				if sp, ok := strings.CutPrefix(strings.TrimSpace(fmt.Sprint(v)), "-c search_path="); ok && !strings.ContainsAny(sp, " ") {
					db.Params.Set("search_path", sp)
				}
			}
		}
		return db, nil
	case django.FamilyMySQL:
		db := DB{Driver: MySQL, Host: d.Host, User: d.User, Password: d.Password, Database: d.Name, Params: url.Values{}}
		if d.Port != "" {
			n, err := strconv.Atoi(d.Port)
			if err != nil || n <= 0 || n > 65535 {
				return DB{}, Usagef("PORT %q is not a port number", d.Port)
			}
			db.Port = n
		}
		for k, v := range d.Options {
			db.Params.Set(k, fmt.Sprint(v))
		}
		for k, v := range d.SecretOptions {
			if db.Password == "" && (k == "password" || k == "passwd") {
				db.Password = v
			}
		}
		return db, nil
	}
	return DB{}, Usagef("engine %s is not one siteplex reads (PostgreSQL, SQLite, MySQL); pass --db", d.Engine)
}

func (p *Project) processEnvMap() map[string]string {
	m := map[string]string{}
	for _, kv := range p.processEnv() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// pgSocketDir is the first of libpq's default socket folders holding a
// socket for port (5432 when 0), or "" (then localhost over TCP).
func pgSocketDir(port int) string {
	if port == 0 {
		port = 5432
	}
	for _, d := range []string{"/var/run/postgresql", "/tmp"} {
		if st, err := os.Stat(filepath.Join(d, ".s.PGSQL."+strconv.Itoa(port))); err == nil && st.Mode()&os.ModeSocket != 0 {
			return d
		}
	}
	return ""
}

// IsNoDjango reports whether err says Django could not be asked at all (no
// Python, no Django in it): not a fault of the project's settings.
func IsNoDjango(err error) bool {
	if errors.Is(err, django.ErrNoPython) {
		return true
	}
	e, ok := django.IsError(err)
	return ok && e.NoDjango()
}
