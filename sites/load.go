package sites

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// DockerFinder finds databases through Docker for docker-compose projects
// (docs/docker.md). The implementation lives in sites/compose; a nil DockerFinder
// means Docker is not consulted.
type DockerFinder interface {
	// ProjectDatabase returns the database of the project's compose
	// database container. base, when not zero, is the URL the project
	// configured (user, password, name are kept unless the container says
	// otherwise). ok is false when no such container runs.
	ProjectDatabase(ctx context.Context, root string, base DB) (db DB, ok bool, err error)
}

// ErrNoDatabase means nothing names a database and no default file exists.
var ErrNoDatabase = errors.New("no database found")

// ResolveDB returns the database to read, following docs/sites.md, "Where
// the database comes from". A URL whose host is a compose service name
// (database_default, db, postgres) that does not resolve is mapped to the
// container through df. A DATABASE_URL that names another database than
// the project's settings is set aside, and the DB's Note says so: callers
// print it (stderr, doctor).
func (p *Project) ResolveDB(ctx context.Context, df DockerFinder) (DB, error) {
	db, ok, err := p.databaseSource(ctx, df)
	if err != nil {
		return DB{}, err
	}
	if ok && db.Driver != SQLite && ComposeHost(db.Host) && !resolves(ctx, db.Host) {
		ce := &ComposeHostError{Source: db.Source, Host: db.Host, Database: db.Database, Driver: db.Driver}
		if df == nil {
			ce.NoDocker = true
			return DB{}, ce
		}
		cdb, found, err := df.ProjectDatabase(ctx, p.Root, db)
		if err != nil || !found {
			ce.Err = err
			return DB{}, ce
		}
		cdb.Source, cdb.Note = db.Source+" via Docker", db.Note
		return cdb, nil
	}
	if ok && (db.Driver != SQLite || db.Source != "db.sqlite3" && db.Source != "data/db.sqlite3") {
		return db, nil
	}
	if df != nil {
		if cdb, found, err := df.ProjectDatabase(ctx, p.Root, DB{}); err == nil && found {
			cdb.Source = "docker-compose container"
			return cdb, nil
		}
	}
	if ok {
		return db, nil
	}
	why, python := "", ""
	if _, derr := p.Django(ctx); derr != nil && p.IsDjango {
		why = "; Django's settings could not be read (" + derr.Error() + ")"
		if IsNoDjango(derr) {
			python = PythonFix + ", "
		}
	}
	return DB{}, fmt.Errorf("%w in %s%s: %spass --db URL, set DATABASE_URL in %s, or declare sites in siteplex.toml", ErrNoDatabase, p.Root, why, python, p.Env.Path)
}

// ReadSites is what every command that lists sites does: it resolves the
// database (ResolveDB, df as there), opens it read-only, loads the sites
// (LoadSitesSource) and closes it. Without any database, the sites
// declared in siteplex.toml alone are read when there are some; db is nil
// then, and when ResolveDB failed.
func (p *Project) ReadSites(ctx context.Context, df DockerFinder) (list []Site, info SourceInfo, db *DB, err error) {
	d, err := p.ResolveDB(ctx, df)
	if errors.Is(err, ErrNoDatabase) && len(p.Config.Sites) > 0 {
		list, info, err = p.LoadSitesSource(ctx, nil)
		return list, info, nil, err
	}
	if err != nil {
		return nil, SourceInfo{}, nil, err
	}
	st, err := Open(ctx, d, false)
	if err != nil {
		return nil, SourceInfo{}, &d, err
	}
	defer st.Close()
	list, info, err = p.LoadSitesSource(ctx, st)
	return list, info, &d, err
}

// LoadSites reads the sites from db (when db is non-nil) and merges the
// sites declared in siteplex.toml, then finalises them (docs/sites.md).
func (p *Project) LoadSites(ctx context.Context, st *Store) ([]Site, error) {
	list, _, err := p.LoadSitesSource(ctx, st)
	return list, err
}

// LoadSitesSource is LoadSites that also says where the sites came from:
// the source p.Hints (nil: the tables) points at, or SourceConfig without
// a store.
func (p *Project) LoadSitesSource(ctx context.Context, st *Store) ([]Site, SourceInfo, error) {
	var list []Site
	hints := p.hints(ctx)
	info := SourceInfo{Source: SourceConfig, Introspected: hints != nil}
	if st != nil {
		var err error
		list, info, err = st.SitesFrom(ctx, hints)
		var nst *NoSiteTableError
		switch {
		case errors.As(err, &nst) && len(p.Config.Sites) > 0:
			// The config declares the sites: a database without a site
			// table (one per tenant, or not migrated yet) is fine.
			list = nil
			info = SourceInfo{Source: SourceConfig, Introspected: hints != nil}
		case err != nil:
			return nil, SourceInfo{}, err
		}
	}
	list, err := p.mergeDeclared(list)
	if err != nil {
		return nil, SourceInfo{}, err
	}
	Finalize(list, p.Format, p.ForcedID())
	return list, info, nil
}

// mergeDeclared merges [sites.<slug>] tables: by id, else by slug; the
// config adds env, command and aliases, the database wins on domain and name.
func (p *Project) mergeDeclared(list []Site) ([]Site, error) {
	if len(p.Config.Sites) == 0 {
		return list, nil
	}
	keys := make([]string, 0, len(p.Config.Sites))
	for k := range p.Config.Sites {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Slugs of database sites, computed as Finalize would (Finalize sorts
	// its argument, so map slugs to ids, not indexes).
	tmp := append([]Site(nil), list...)
	Finalize(tmp, p.Format, 0)
	idByID := map[int64]int{}
	for i := range list {
		idByID[list[i].ID] = i
	}
	bySlug := map[string]int{}
	for i := range tmp {
		bySlug[tmp[i].Slug] = idByID[tmp[i].ID]
	}
	// Declared sites without an id get ids after every id in use, the
	// database's and the config's.
	nextID := int64(0)
	for _, s := range list {
		nextID = max(nextID, s.ID)
	}
	for _, sc := range p.Config.Sites {
		nextID = max(nextID, sc.ID)
	}
	for _, slug := range keys {
		sc := p.Config.Sites[slug]
		idx := -1
		if sc.ID != 0 {
			for i := range list {
				if list[i].ID == sc.ID {
					idx = i
					break
				}
			}
		}
		if idx < 0 {
			if i, ok := bySlug[slug]; ok {
				idx = i
			}
		}
		if idx >= 0 {
			s := &list[idx]
			s.Env, s.Command, s.Declared = sc.Env, sc.Command, true
			for _, a := range sc.Aliases {
				if !slices.Contains(s.Aliases, a) {
					s.Aliases = append(s.Aliases, a)
				}
			}
			if s.PlusSlug == "" {
				s.Slug = slug
			}
			continue
		}
		if sc.Domain == "" {
			return nil, Usagef("config %s: [sites.%s] has no domain and matches no site in the database", p.Config.Path, slug)
		}
		id := sc.ID
		if id == 0 {
			nextID++
			id = nextID
		}
		nextID = max(nextID, id)
		name := sc.Name
		if name == "" {
			name = sc.Domain
		}
		list = append(list, Site{
			ID: id, Name: name, Domain: sc.Domain, Slug: slug, Enabled: true,
			Aliases: append([]string{}, sc.Aliases...), Env: sc.Env, Command: sc.Command, Declared: true,
			Origin: Origin{Source: SourceConfig},
		})
	}
	return list, nil
}
