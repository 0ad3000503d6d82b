package sites

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
)

// Where a project's sites come from: the framework that routes a request
// to a site, and its tables (docs/sites.md, "Where the sites come from").

// Source names where a site, or a project's list of sites, comes from. It
// is the "source" field of `siteplex sites --json`.
type Source string

const (
	// SourceDjangoSite is django_site (django.contrib.sites, with
	// django-multisite's aliases and django-multisite-plus's rows;
	// Mezzanine too).
	SourceDjangoSite Source = "django_site"
	// SourceWagtail is wagtailcore_site.
	SourceWagtail Source = "wagtail"
	// SourceTenants is django-tenants' tenant and domain tables.
	SourceTenants Source = "django_tenants"
	// SourcePGSchemas is django-pgschemas' tenant and domain tables and
	// its static tenants (TENANTS in settings).
	SourcePGSchemas Source = "django_pgschemas"
	// SourceConfig is a [sites.<slug>] table of siteplex.toml with no
	// database row.
	SourceConfig Source = "config"
)

// framework is the source's framework as people spell it.
func (src Source) framework() string {
	switch src {
	case SourceWagtail:
		return "Wagtail"
	case SourceTenants:
		return "django-tenants"
	case SourcePGSchemas:
		return "django-pgschemas"
	}
	return string(src)
}

// Framework names, as Hints.Frameworks spells them.
const (
	FrameworkSites         = "contrib.sites"
	FrameworkMultisite     = "multisite"
	FrameworkMultisitePlus = "multisite_plus"
	FrameworkMezzanine     = "mezzanine"
	FrameworkWagtail       = "wagtail"
	FrameworkTenants       = "django_tenants"
	FrameworkPGSchemas     = "django_pgschemas"
)

// Hints is what the project's own Django reports about its site
// frameworks (introspection). A nil *Hints means nothing is known: the
// source is then chosen from the tables that exist.
type Hints struct {
	// Frameworks are the installed site frameworks (Framework* names).
	Frameworks []string
	// Tables maps model labels ("customers.Client", "wagtailcore.Site")
	// to their db_table. A model missing here gets Django's default name,
	// <app_label>_<model name lower-cased>.
	Tables map[string]string
	// TenantModel and TenantDomainModel are django-tenants' TENANT_MODEL
	// and TENANT_DOMAIN_MODEL ("customers.Client", "customers.Domain").
	TenantModel, TenantDomainModel string
	// PublicSchema is django-tenants' PUBLIC_SCHEMA_NAME ("" = "public"),
	// the schema holding the tenant and domain tables.
	PublicSchema string
	// PGSchemas is django-pgschemas' TENANTS setting; nil without it.
	PGSchemas *PGSchemasHints
}

// PGSchemasHints is django-pgschemas' TENANTS setting.
type PGSchemasHints struct {
	// TenantModel and DomainModel are TENANTS["default"]'s ("" when the
	// project has static tenants only).
	TenantModel, DomainModel string
	// Static are the static tenants: every TENANTS key but "public" and
	// "default", in the setting's order.
	Static []StaticTenant
}

// StaticTenant is a django-pgschemas tenant that exists only in settings.
type StaticTenant struct {
	Schema                   string
	Domains, FallbackDomains []string
}

func (h *Hints) has(fw string) bool { return h != nil && slices.Contains(h.Frameworks, fw) }

// table is the db_table of a model label: from Tables (case-insensitive
// label), else Django's default. "" when model is "".
func (h *Hints) table(model string) string {
	if model == "" {
		return ""
	}
	if t, ok := h.Tables[model]; ok {
		return t
	}
	for k, t := range h.Tables {
		if strings.EqualFold(k, model) {
			return t
		}
	}
	label, name, ok := strings.Cut(model, ".")
	if !ok {
		return strings.ToLower(model)
	}
	return label + "_" + strings.ToLower(name)
}

// SourceInfo says where a project's sites were read from and why.
type SourceInfo struct {
	Source Source
	// Tables are the tables read, schema-qualified for tenants
	// ("public.customers_domain").
	Tables []string
	// Introspected is true when Hints chose the source, false when the
	// tables that exist did.
	Introspected bool
	// Notes are facts for people: site tables present but not read, and
	// what siteplex could not know.
	Notes []string
}

// String is "wagtail (wagtailcore_site)".
func (i SourceInfo) String() string {
	if len(i.Tables) == 0 {
		return string(i.Source)
	}
	return fmt.Sprintf("%s (%s)", i.Source, strings.Join(i.Tables, ", "))
}

// Origin is what a site's source adds to a Site.
type Origin struct {
	// Source is where the row comes from.
	Source Source `json:"source"`
	// Default is Wagtail's is_default_site: the site Wagtail serves for
	// a Host it does not know.
	Default bool `json:"-"`
	// Port is Wagtail's port (0 for other sources). Wagtail ignores the
	// Host's port; a port other than 80 and 443 is part of Domain, as in
	// Wagtail's root_url.
	Port int `json:"-"`
	// Schema is a tenant's schema_name (django-tenants, django-pgschemas),
	// the {schema} of the domain format.
	Schema string `json:"-"`
	// Folders are a django-pgschemas tenant's folder routes
	// ("shared.example/acme"): served under /<folder>/ of a domain, so
	// not reachable by host name alone.
	Folders []string `json:"-"`
	// SourceProblems are problems found while reading the row; Finalize
	// puts them first in Problems.
	SourceProblems []string `json:"-"`
	// NoHostName, when not "", is the SourceProblems entry saying why the
	// site has no host name of its own by its framework's design (a
	// django-pgschemas tenant served only under a folder, the public
	// schema, a tenant without a domain): `hosts apply` for every site
	// leaves it out with a note instead of failing (docs/hosts.md).
	NoHostName string `json:"-"`
}

// siteTables are the site tables of the current schema.
type siteTables struct {
	Tables
	Wagtail bool
}

// siteTablesIn detects django_site, multisite_alias,
// django_multisite_plus_site and wagtailcore_site in the current schema
// (PostgreSQL) or database (MySQL).
func (s *Store) siteTablesIn(ctx context.Context) (siteTables, error) {
	const names = `('django_site','multisite_alias','django_multisite_plus_site','wagtailcore_site')`
	q := `SELECT name FROM sqlite_master WHERE type='table' AND name IN ` + names
	switch s.cfg.Driver {
	case Postgres:
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name IN ` + names
	case MySQL:
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ` + names
	}
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return siteTables{}, s.wrap(err)
	}
	defer rows.Close()
	var t siteTables
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return siteTables{}, s.wrap(err)
		}
		switch name {
		case "django_site":
			t.Site = true
		case "multisite_alias":
			t.Alias = true
		case "django_multisite_plus_site":
			t.Plus = true
		case "wagtailcore_site":
			t.Wagtail = true
		}
	}
	if err := rows.Err(); err != nil {
		return siteTables{}, s.wrap(err)
	}
	return t, nil
}

// tableExists reports whether table exists in schema (PostgreSQL; ""
// means the current schema), or in the database (SQLite, MySQL).
func (s *Store) tableExists(ctx context.Context, schema, table string) (bool, error) {
	var q string
	args := []any{table}
	switch s.cfg.Driver {
	case SQLite:
		q = `SELECT count(*) FROM sqlite_master WHERE type IN ('table','view') AND name = $1`
	case MySQL:
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ?`
	default:
		q = `SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relname = $1 AND c.relkind IN ('r','p','v','m') AND n.nspname = `
		if schema == "" {
			q += `current_schema()`
		} else {
			q += `$2`
			args = append(args, schema)
		}
	}
	var n int
	if err := s.db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return false, s.wrap(err)
	}
	return n > 0, nil
}

// plan is a chosen source and what reading it needs.
type plan struct {
	info                  SourceInfo
	tables                siteTables // django_site: which tables exist
	schema                string     // tenants: the public schema
	tenantTable, domTable string     // tenants, pgschemas (dynamic)
	static                []StaticTenant
}

// DetectSource decides where the sites come from: from h when given (the
// framework that routes requests wins: django-tenants, django-pgschemas,
// Wagtail, then django_site), confirmed by the tables that exist; without
// h, from the tables alone in the same order. A framework whose tables
// are missing is a *NoSiteTableError, never a silent fall back to another
// source.
func (s *Store) DetectSource(ctx context.Context, h *Hints) (SourceInfo, error) {
	p, err := s.plan(ctx, h)
	return p.info, err
}

func (s *Store) plan(ctx context.Context, h *Hints) (plan, error) {
	t, err := s.siteTablesIn(ctx)
	if err != nil {
		return plan{}, err
	}
	var p plan
	p.tables = t
	p.info.Introspected = h != nil
	notUsed := func(what string) {
		if t.Site {
			p.info.Notes = append(p.info.Notes, fmt.Sprintf("django_site exists too (contrib.sites, for django-allauth say) and is not listed: %s routes requests", what))
		}
	}
	switch {
	case h.has(FrameworkTenants):
		if err := s.planTenants(ctx, &p, h); err != nil {
			return plan{}, err
		}
		notUsed("django-tenants")
		return p, nil
	case h.has(FrameworkPGSchemas):
		if err := s.planPGSchemas(ctx, &p, h); err != nil {
			return plan{}, err
		}
		notUsed("django-pgschemas")
		return p, nil
	case h.has(FrameworkWagtail):
		if !t.Wagtail {
			return plan{}, &NoSiteTableError{DB: s.cfg.Display(), Table: "wagtailcore_site", Hint: "Wagtail is installed: run `manage.py migrate`"}
		}
		p.info.Source, p.info.Tables = SourceWagtail, []string{"wagtailcore_site"}
		notUsed("Wagtail")
		return p, nil
	case h != nil && !h.has(FrameworkSites) && !h.has(FrameworkMultisite) && !h.has(FrameworkMultisitePlus) && !h.has(FrameworkMezzanine):
		return plan{}, &NoSiteTableError{DB: s.cfg.Display(), Table: "site", Hint: "the project installs no site framework " +
			"(django.contrib.sites, Wagtail, django-tenants, django-pgschemas); declare its sites in siteplex.toml"}
	case h != nil:
		return p, s.planDjangoSite(&p)
	}

	// No hints: the tables decide.
	if s.cfg.Driver == Postgres {
		found, err := s.findTenantTables(ctx, &p, "public")
		if err != nil {
			return plan{}, err
		}
		if found {
			notUsed(p.info.Source.framework())
			return p, nil
		}
	}
	if t.Wagtail {
		p.info.Source, p.info.Tables = SourceWagtail, []string{"wagtailcore_site"}
		notUsed("Wagtail")
		return p, nil
	}
	return p, s.planDjangoSite(&p)
}

func (s *Store) planDjangoSite(p *plan) error {
	if !p.tables.Site {
		return &NoSiteTableError{DB: s.cfg.Display()}
	}
	p.info.Source, p.info.Tables = SourceDjangoSite, []string{"django_site"}
	if p.tables.Alias {
		p.info.Tables = append(p.info.Tables, "multisite_alias")
	}
	if p.tables.Plus {
		p.info.Tables = append(p.info.Tables, "django_multisite_plus_site")
	}
	if p.tables.Wagtail {
		p.info.Notes = append(p.info.Notes, "wagtailcore_site exists too and is not listed: the project's settings do not install Wagtail")
	}
	return nil
}

// needPostgres refuses a tenant framework on another engine.
func (s *Store) needPostgres(framework string) error {
	if s.cfg.Driver != Postgres {
		return fmt.Errorf("%s is installed, but %s is not PostgreSQL: %s works on PostgreSQL only; point siteplex at the project's database with --db postgres://…", framework, s.cfg.Display(), framework)
	}
	return nil
}

func (s *Store) planTenants(ctx context.Context, p *plan, h *Hints) error {
	if err := s.needPostgres("django-tenants"); err != nil {
		return err
	}
	if h.TenantModel == "" || h.TenantDomainModel == "" {
		return fmt.Errorf("django-tenants is installed, but TENANT_MODEL or TENANT_DOMAIN_MODEL is not set in the settings: set both (django-tenants needs them too)")
	}
	p.schema = h.PublicSchema
	if p.schema == "" {
		p.schema = "public"
	}
	p.tenantTable, p.domTable = h.table(h.TenantModel), h.table(h.TenantDomainModel)
	p.info.Source = SourceTenants
	return s.checkTenantTables(ctx, p, "`manage.py migrate_schemas --shared`")
}

func (s *Store) planPGSchemas(ctx context.Context, p *plan, h *Hints) error {
	if err := s.needPostgres("django-pgschemas"); err != nil {
		return err
	}
	p.schema = "public" // django-pgschemas 0.x hard-codes it
	p.info.Source = SourcePGSchemas
	if h.PGSchemas == nil {
		return fmt.Errorf("django-pgschemas is installed, but its TENANTS setting was not reported: siteplex cannot list its tenants")
	}
	p.static = h.PGSchemas.Static
	if h.PGSchemas.TenantModel == "" || h.PGSchemas.DomainModel == "" {
		if len(p.static) == 0 {
			return fmt.Errorf("django-pgschemas is installed, but TENANTS names no tenant model and no static tenant: nothing routes requests")
		}
		p.info.Tables = []string{"TENANTS (settings)"}
		return nil
	}
	p.tenantTable, p.domTable = h.table(h.PGSchemas.TenantModel), h.table(h.PGSchemas.DomainModel)
	if err := s.checkTenantTables(ctx, p, "`manage.py migrateschema`"); err != nil {
		return err
	}
	if len(p.static) > 0 {
		p.info.Tables = append(p.info.Tables, "TENANTS (settings)")
	}
	return nil
}

// checkTenantTables confirms that the tenant and domain tables exist in
// the public schema.
func (s *Store) checkTenantTables(ctx context.Context, p *plan, migrate string) error {
	for _, tb := range []string{p.tenantTable, p.domTable} {
		ok, err := s.tableExists(ctx, p.schema, tb)
		if err != nil {
			return err
		}
		if !ok {
			return &NoSiteTableError{DB: s.cfg.Display(), Table: p.schema + "." + tb,
				Hint: fmt.Sprintf("%s is installed and its settings name it: run %s", p.info.Source.framework(), migrate)}
		}
	}
	p.info.Tables = []string{p.schema + "." + p.tenantTable, p.schema + "." + p.domTable}
	return nil
}

// findTenantTables looks, without settings, for a tenant table (a
// schema_name column) and its domain table (domain, tenant_id and
// is_primary; a folder column too for django-pgschemas) in schema
// (docs/sites.md, "Where the sites come from"). The domain table's
// tenant_id foreign key names its tenant table when there are several.
func (s *Store) findTenantTables(ctx context.Context, p *plan, schema string) (bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.relname, a.attname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('r','p') AND a.attnum > 0 AND NOT a.attisdropped
  AND a.attname IN ('schema_name','domain','tenant_id','is_primary','folder')`, schema)
	if err != nil {
		return false, s.wrap(err)
	}
	defer rows.Close()
	cols := map[string]map[string]bool{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			return false, s.wrap(err)
		}
		if cols[table] == nil {
			cols[table] = map[string]bool{}
		}
		cols[table][col] = true
	}
	if err := rows.Err(); err != nil {
		return false, s.wrap(err)
	}
	var tenants, domains []string
	for table, c := range cols {
		if c["schema_name"] {
			tenants = append(tenants, table)
		}
		if c["domain"] && c["tenant_id"] && c["is_primary"] {
			domains = append(domains, table)
		}
	}
	if len(tenants) == 0 || len(domains) == 0 {
		return false, nil
	}
	slices.Sort(tenants)
	slices.Sort(domains)
	if len(domains) > 1 {
		return false, fmt.Errorf("found several tenant domain tables in schema %s (%s): siteplex needs the project's settings (TENANT_DOMAIN_MODEL) to choose; make sure it can run the project's Python", schema, strings.Join(domains, ", "))
	}
	dom := domains[0]
	tenant := ""
	err = s.db.QueryRowContext(ctx, `SELECT t.relname FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class d ON d.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = d.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = k.confrelid
JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
WHERE k.contype = 'f' AND n.nspname = $1 AND d.relname = $2 AND a.attname = 'tenant_id'`, schema, dom).Scan(&tenant)
	switch {
	case err == sql.ErrNoRows && len(tenants) == 1:
		tenant = tenants[0]
	case err == sql.ErrNoRows:
		return false, fmt.Errorf("found several tenant tables in schema %s (%s) and no foreign key from %s.tenant_id: siteplex needs the project's settings (TENANT_MODEL) to choose", schema, strings.Join(tenants, ", "), dom)
	case err != nil:
		return false, s.wrap(err)
	}
	p.schema, p.tenantTable, p.domTable = schema, tenant, dom
	p.info.Tables = []string{schema + "." + tenant, schema + "." + dom}
	p.info.Source = SourceTenants
	if cols[dom]["folder"] {
		p.info.Source = SourcePGSchemas
		p.info.Notes = append(p.info.Notes, "django-pgschemas' static tenants live in settings (TENANTS), which siteplex could not read: only the tenants of "+p.info.Tables[0]+" are listed")
	}
	return true, nil
}

// SitesFrom reads the sites of the source DetectSource picks for h (nil:
// from the tables). The list is raw: call Finalize (or use
// Project.LoadSites) for slugs, local domains and problems.
func (s *Store) SitesFrom(ctx context.Context, h *Hints) ([]Site, SourceInfo, error) {
	p, err := s.plan(ctx, h)
	if err != nil {
		return nil, SourceInfo{}, err
	}
	var list []Site
	switch p.info.Source {
	case SourceWagtail:
		list, err = s.wagtailSites(ctx)
	case SourceTenants, SourcePGSchemas:
		list, err = s.tenantSites(ctx, &p)
	default:
		list, err = s.djangoSites(ctx, p.tables.Tables)
	}
	if err != nil {
		return nil, SourceInfo{}, err
	}
	return list, p.info, nil
}

// wagtailSites reads wagtailcore_site (docs/sites.md, "Wagtail").
func (s *Store) wagtailSites(ctx context.Context) ([]Site, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, hostname, port, site_name, is_default_site FROM wagtailcore_site ORDER BY id`)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var list []Site
	for rows.Next() {
		var (
			id       int64
			hostname string
			port     int
			name     sql.NullString // NULL-able before Wagtail's migration 0046
			def      bool
		)
		if err := rows.Scan(&id, &hostname, &port, &name, &def); err != nil {
			return nil, s.wrap(err)
		}
		st := Site{ID: id, Name: name.String, Domain: hostname, Enabled: true,
			Origin: Origin{Source: SourceWagtail, Default: def, Port: port}}
		if port != 80 && port != 443 && port != 0 {
			st.Domain = fmt.Sprintf("%s:%d", hostname, port)
		}
		if st.Name == "" {
			st.Name = st.Domain
		}
		// Wagtail compares the lower-cased Host with `=`: a stored capital
		// never matches on PostgreSQL or SQLite (MySQL's collation ignores
		// case). The default site is still served, for every unknown Host.
		if hostname != strings.ToLower(hostname) && s.cfg.Driver != MySQL && !def {
			st.SourceProblems = append(st.SourceProblems, fmt.Sprintf("hostname %q has capital letters: Wagtail compares the lower-cased Host exactly, so no request reaches this site by name; lower-case it in Wagtail's Sites settings", hostname))
		}
		list = append(list, st)
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err)
	}
	defaults := 0
	for i := range list {
		if list[i].Default {
			defaults++
		}
	}
	if defaults > 1 {
		// Nothing in the database stops it; Wagtail then picks one.
		for i := range list {
			if list[i].Default {
				list[i].SourceProblems = append(list[i].SourceProblems, fmt.Sprintf("%d sites are marked as Wagtail's default site: keep one", defaults))
			}
		}
	}
	return list, nil
}

// tenantSites reads one site per tenant of django-tenants or
// django-pgschemas (docs/sites.md, "django-tenants", "django-pgschemas"), plus
// django-pgschemas' static tenants from the hints.
func (s *Store) tenantSites(ctx context.Context, p *plan) ([]Site, error) {
	var list []Site
	if p.tenantTable != "" {
		d := s.Dialect()
		folderCol := `''`
		if p.info.Source == SourcePGSchemas {
			folderCol = `d.folder`
		}
		q := fmt.Sprintf(`SELECT t.id, t.schema_name, d.domain, %s, d.is_primary
FROM %s t LEFT JOIN %s d ON d.tenant_id = t.id
ORDER BY t.id, d.is_primary DESC, d.domain`, folderCol, d.Quote(p.schema, p.tenantTable), d.Quote(p.schema, p.domTable))
		rows, err := s.db.QueryContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("reading the tenants from %s: %w", strings.Join(p.info.Tables, " and "), s.wrap(err))
		}
		defer rows.Close()
		var (
			id             int64
			schema         string
			domain, folder sql.NullString
			primary        sql.NullBool
		)
		for rows.Next() {
			if err := rows.Scan(&id, &schema, &domain, &folder, &primary); err != nil {
				return nil, s.wrap(err)
			}
			if n := len(list); n == 0 || list[n-1].ID != id {
				list = append(list, Site{ID: id, Name: schema, Enabled: true, Origin: Origin{Source: p.info.Source, Schema: schema}})
			}
			st := &list[len(list)-1]
			switch {
			case !domain.Valid:
			case folder.String != "":
				st.Folders = append(st.Folders, domain.String+"/"+folder.String)
			default:
				st.Aliases = append(st.Aliases, domain.String)
				if primary.Bool && st.CanonicalAlias == "" {
					st.CanonicalAlias = domain.String
				}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, s.wrap(err)
		}
	}
	for i, t := range p.static {
		list = append(list, Site{ID: -int64(i + 1), Name: t.Schema, Enabled: true,
			Aliases: append(slices.Clip(t.Domains), t.FallbackDomains...), CanonicalAlias: first(t.Domains),
			Origin: Origin{Source: SourcePGSchemas, Schema: t.Schema}})
	}
	for i := range list {
		tenantDomains(&list[i], p)
	}
	return list, nil
}

func first(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return l[0]
}

// tenantDomains makes the primary domain (else the first) the site's
// domain and the rest its aliases, and notes what keeps the tenant from
// being reached by name.
func tenantDomains(st *Site, p *plan) {
	fw := st.Source.framework()
	if st.CanonicalAlias == "" && len(st.Aliases) > 0 {
		st.CanonicalAlias = st.Aliases[0]
	}
	canon := st.CanonicalAlias
	st.Domain = canon
	if len(st.Aliases) > 1 {
		slices.SortFunc(st.Aliases, func(a, b string) int {
			if (a == canon) != (b == canon) {
				if a == canon {
					return -1
				}
				return 1
			}
			return strings.Compare(a, b)
		})
	}
	switch {
	case st.Source == SourcePGSchemas && st.Schema == "public":
		st.NoHostName = "the public schema cannot be routed to (django-pgschemas)"
		st.SourceProblems = append(st.SourceProblems, st.NoHostName)
	case canon == "" && len(st.Folders) > 0:
		st.Domain = st.Folders[0][:strings.IndexByte(st.Folders[0], '/')]
		st.NoHostName = fmt.Sprintf("served only under a folder (%s): siteplex routes by host name, so open it through the site of that domain", strings.Join(st.Folders, ", "))
		st.SourceProblems = append(st.SourceProblems, st.NoHostName)
	case canon == "":
		st.NoHostName = fmt.Sprintf("tenant %q has no domain: add one to reach it (%s routes by domain)", st.Schema, fw)
		st.SourceProblems = append(st.SourceProblems, st.NoHostName)
	case strings.HasPrefix(strings.ToLower(canon), "www."):
		st.SourceProblems = append(st.SourceProblems, fmt.Sprintf("primary domain %q starts with www.: %s strips www. from the Host, so it never matches; store it without www.", canon, fw))
	case canon != strings.ToLower(canon):
		st.SourceProblems = append(st.SourceProblems, fmt.Sprintf("primary domain %q has capital letters: %s compares the Host exactly, so it never matches; lower-case it", canon, fw))
	}
}
