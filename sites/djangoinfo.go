package sites

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
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
		Request: django.Request{Root: p.Root, Python: py, Env: p.ProcessEnv(), Guess: g.Module},
		File:    filepath.Join(p.StateDir(), "django.json"),
		EnvFile: p.Env.Path,
		KeyDir:  django.DefaultKeyDir(p.opts.Getenv),
	})
}

// ProcessEnv is the environment a dev process gets, before the engine's
// own variables (docs/supervisor.md): siteplex's environment, then the env
// file's variables, then [process] env from siteplex.toml; a later entry
// of the same name wins. The introspection runs with it too, so that
// Django reads the settings a process will.
func (p *Project) ProcessEnv() []string {
	env := os.Environ()
	if p.Env != nil {
		for _, k := range slices.Sorted(maps.Keys(p.Env.Values)) {
			env = append(env, k+"="+p.Env.Values[k])
		}
	}
	if p.Config != nil {
		for _, k := range slices.Sorted(maps.Keys(p.Config.Process.Env)) {
			env = append(env, k+"="+p.Config.Process.Env[k])
		}
	}
	return env
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
// drivers read it (DBFromDjango), after filling PostgreSQL's empty fields
// from the libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD,
// PGDATABASE) the dev process would see. An in-memory SQLite database has
// no sites to read.
func (p *Project) dbFromSettings(d django.Database) (DB, error) {
	host, port, user, password, name := d.Host, d.Port, d.User, d.Password, d.Name
	switch d.Family() {
	case django.FamilySQLite:
		if name == "" || name == ":memory:" || strings.HasPrefix(name, "file::memory:") {
			return DB{}, Usagef("%s is an in-memory SQLite database: there are no sites to read; pass --db", d.Engine)
		}
	case django.FamilyPostgres:
		env := p.processEnvMap()
		fill := func(v *string, k string) {
			if *v == "" {
				*v = env[k]
			}
		}
		fill(&host, "PGHOST")
		fill(&port, "PGPORT")
		fill(&user, "PGUSER")
		fill(&password, "PGPASSWORD")
		fill(&name, "PGDATABASE")
	}
	opts := make(map[string]any, len(d.Options)+len(d.SecretOptions))
	for k, v := range d.Options {
		opts[k] = v
	}
	for k, v := range d.SecretOptions {
		opts[k] = v
	}
	return DBFromDjango(d.Engine, name, host, port, user, password, opts, p.Root)
}

func (p *Project) processEnvMap() map[string]string {
	m := map[string]string{}
	for _, kv := range p.ProcessEnv() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// PythonFix is the way out when the interpreter siteplex found cannot run
// the project's Django (IsNoDjango): every message that meets that case
// says it in these words.
const PythonFix = "name the interpreter that has the project's Django with --python PATH or python in siteplex.toml"

// IsNoDjango reports whether err says Django could not be asked at all (no
// Python, no Django in it): not a fault of the project's settings.
func IsNoDjango(err error) bool {
	if errors.Is(err, django.ErrNoPython) {
		return true
	}
	e, ok := django.IsError(err)
	return ok && e.NoDjango()
}

// hintsFromDjango turns the introspection's answer into the Hints that
// choose where the sites come from (source.go).
func hintsFromDjango(info *django.Info) *Hints {
	f := info.Frameworks
	h := &Hints{Tables: info.Tables}
	add := func(ok bool, name string) {
		if ok {
			h.Frameworks = append(h.Frameworks, name)
		}
	}
	add(f.Sites, FrameworkSites)
	add(f.Multisite, FrameworkMultisite)
	add(f.MultisitePlus, FrameworkMultisitePlus)
	add(f.Mezzanine, FrameworkMezzanine)
	add(f.Wagtail != "", FrameworkWagtail)
	add(f.Tenants != nil, FrameworkTenants)
	add(f.PgSchemas != nil, FrameworkPGSchemas)
	if t := f.Tenants; t != nil {
		h.TenantModel, h.TenantDomainModel, h.PublicSchema = t.TenantModel, t.DomainModel, t.PublicSchema
	}
	if ps := f.PgSchemas; ps != nil {
		h.PGSchemas = &PGSchemasHints{TenantModel: ps.TenantModel, DomainModel: ps.DomainModel}
		for _, st := range ps.Static {
			h.PGSchemas.Static = append(h.PGSchemas.Static, StaticTenant{Schema: st.Schema, Domains: st.Domains, FallbackDomains: st.FallbackDomains})
		}
	}
	return h
}

// hints returns p.Hints, else what the project's Django reports (nil when
// it cannot be asked: the tables decide then).
func (p *Project) hints(ctx context.Context) *Hints {
	if p.Hints != nil || !p.IsDjango {
		return p.Hints
	}
	info, err := p.Django(ctx)
	if err != nil || info == nil {
		return nil
	}
	return hintsFromDjango(info)
}
