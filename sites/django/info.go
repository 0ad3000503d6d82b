package django

import (
	"fmt"
	"sort"
	"strings"
)

// Info is what the project's Django says about itself (docs/django.md).
// Load and Introspect return it; the JSON names are those of the embedded
// script's answer and of the cache.
type Info struct {
	// Python is the interpreter's sys.executable, PythonVersion its version.
	Python        string `json:"python"`
	PythonVersion string `json:"python_version"`
	// Django is django.get_version().
	Django string `json:"django"`
	// SettingsModule is the module the project runs with ("proj.settings").
	SettingsModule string `json:"settings_module"`
	// SettingsFrom says who chose it: "manage.py", "environment" (the env
	// file or siteplex's environment), or "guess" (siteplex found a
	// settings.py when manage.py could not be run).
	SettingsFrom string `json:"settings_from"`
	// SettingsFiles are the files under the project root the settings read
	// (every project module imported while importing them, and every file
	// they opened): the cache key.
	SettingsFiles []string `json:"settings_files"`

	// Databases is settings.DATABASES by alias.
	Databases     map[string]Database `json:"databases"`
	InstalledApps []string            `json:"installed_apps"`
	Middleware    []string            `json:"middleware"`
	// AllowedHosts is settings.ALLOWED_HOSTS when it is a list or tuple.
	AllowedHosts []string `json:"allowed_hosts"`
	// AllowedHostsLazy names the class of ALLOWED_HOSTS when it is not a
	// list (Mezzanine's SitesAllowedHosts reads django_site on first use):
	// siteplex cannot tell what it admits. "" for a list.
	AllowedHostsLazy string `json:"allowed_hosts_lazy"`
	Debug            bool   `json:"debug"`
	// ProxySSLHeader is true when the project sets SECURE_PROXY_SSL_HEADER.
	ProxySSLHeader bool     `json:"secure_proxy_ssl_header"`
	SilencedChecks []string `json:"silenced_system_checks"`

	SiteID     SiteID     `json:"site_id"`
	Frameworks Frameworks `json:"frameworks"`
	// Tables maps the site models siteplex knows ("sites.Site",
	// "multisite.Alias", "django_multisite_plus.Site", "wagtailcore.Site",
	// TENANT_MODEL, TENANT_DOMAIN_MODEL, pgschemas' TENANT_MODEL and
	// DOMAIN_MODEL) to their db_table, from Django's app registry.
	Tables map[string]string `json:"tables"`

	// SetupError is set when django.setup() failed (an app that cannot be
	// imported, or one that touches the database in ready()): Frameworks
	// then come from INSTALLED_APPS and Tables hold the default names.
	SetupError string   `json:"setup_error,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`

	// Cache key material, not for people.
	AbsentFiles []string `json:"absent_files,omitempty"`
	EnvRead     []string `json:"env_read,omitempty"`
	EnvAll      bool     `json:"env_all,omitempty"`
	SysPath     []string `json:"sys_path,omitempty"`
}

// Kinds of SITE_ID (SiteID.Kind).
const (
	// KindInt: SITE_ID is an int written in the settings.
	KindInt = "int"
	// KindEnv: SITE_ID is an int that follows an environment variable
	// (SiteID.EnvVar), as Divio/aldryn projects read it. siteplex checks
	// this by importing the settings a second time with that variable
	// changed.
	KindEnv = "env"
	// KindObject: SITE_ID is an object, like django-multisite's SiteID
	// (SiteID.Class, SiteID.Default).
	KindObject = "object"
	// KindMissing: the settings set no SITE_ID (Django then picks the site
	// from the Host).
	KindMissing = "missing"
	// KindNone: SITE_ID = None.
	KindNone = "none"
	// KindOther: anything else (a string, a bool): sites.E101 rejects it.
	KindOther = "other"
)

// SiteID describes settings.SITE_ID.
type SiteID struct {
	Kind string `json:"kind"`
	// Value is the int (KindInt, KindEnv).
	Value int64 `json:"value,omitempty"`
	// EnvVar is the variable SITE_ID follows (KindEnv).
	EnvVar string `json:"env_var,omitempty"`
	// Class is the object's class (KindObject), e.g. multisite.threadlocals.SiteID.
	Class string `json:"class,omitempty"`
	// Settable is true when the object has set() (django-multisite's API).
	Settable bool `json:"settable,omitempty"`
	// Default is the object's int default (KindObject), nil when it has none.
	Default *int64 `json:"default,omitempty"`
	// DefaultDomain is a SiteDomain's default domain.
	DefaultDomain string `json:"default_domain,omitempty"`
	// Repr is the value of a KindOther SITE_ID.
	Repr string `json:"repr,omitempty"`
}

// String describes the SITE_ID for people: "1 (int)", "SiteID(default=1)".
func (s SiteID) String() string {
	switch s.Kind {
	case KindInt:
		return fmt.Sprintf("SITE_ID = %d", s.Value)
	case KindEnv:
		return fmt.Sprintf("SITE_ID = %d, read from $%s", s.Value, s.EnvVar)
	case KindObject:
		cls := s.Class[strings.LastIndexByte(s.Class, '.')+1:]
		switch {
		case s.Default != nil:
			return fmt.Sprintf("SITE_ID = %s(default=%d)", cls, *s.Default)
		case s.DefaultDomain != "":
			return fmt.Sprintf("SITE_ID = %s(%q)", cls, s.DefaultDomain)
		}
		return fmt.Sprintf("SITE_ID = %s() with no default", cls)
	case KindMissing:
		return "no SITE_ID"
	case KindNone:
		return "SITE_ID = None"
	}
	return "SITE_ID = " + s.Repr
}

// Frameworks says which site frameworks INSTALLED_APPS holds.
type Frameworks struct {
	Sites         bool `json:"sites,omitempty"`          // django.contrib.sites
	Multisite     bool `json:"multisite,omitempty"`      // django-multisite
	MultisitePlus bool `json:"multisite_plus,omitempty"` // django-multisite-plus
	Mezzanine     bool `json:"mezzanine,omitempty"`
	// Wagtail is the app installed: "wagtail" (3.0+), "wagtail.core" (2.x),
	// "wagtail.wagtailcore" (1.x); "" without Wagtail.
	Wagtail   string     `json:"wagtail,omitempty"`
	Tenants   *Tenants   `json:"django_tenants,omitempty"`
	PgSchemas *PgSchemas `json:"django_pgschemas,omitempty"`
}

// Tenants is django-tenants' configuration.
type Tenants struct {
	TenantModel  string `json:"tenant_model"` // TENANT_MODEL, "app.Model"
	DomainModel  string `json:"domain_model"` // TENANT_DOMAIN_MODEL
	TenantTable  string `json:"tenant_table"` // its db_table ("" when the model is unknown)
	DomainTable  string `json:"domain_table"`
	PublicSchema string `json:"public_schema"` // PUBLIC_SCHEMA_NAME, default "public"
}

// PgSchemas is django-pgschemas' configuration.
type PgSchemas struct {
	TenantModel  string `json:"tenant_model"` // TENANTS["default"]["TENANT_MODEL"]
	DomainModel  string `json:"domain_model"` // TENANTS["default"]["DOMAIN_MODEL"]
	TenantTable  string `json:"tenant_table"`
	DomainTable  string `json:"domain_table"`
	PublicSchema string `json:"public_schema"` // always "public" in 0.x
	// Static are the tenants that exist only in settings (every TENANTS key
	// but "public" and "default").
	Static []StaticTenant `json:"static"`
}

// StaticTenant is one static django-pgschemas tenant.
type StaticTenant struct {
	Schema          string   `json:"schema"`
	Domains         []string `json:"domains"`
	FallbackDomains []string `json:"fallback_domains"`
}

// Installed lists the detected frameworks by their package names, in a
// fixed order: django.contrib.sites, django-multisite,
// django-multisite-plus, Mezzanine, Wagtail, django-tenants,
// django-pgschemas.
func (f Frameworks) Installed() []string {
	var out []string
	add := func(ok bool, name string) {
		if ok {
			out = append(out, name)
		}
	}
	add(f.Sites, "django.contrib.sites")
	add(f.Multisite, "django-multisite")
	add(f.MultisitePlus, "django-multisite-plus")
	add(f.Mezzanine, "Mezzanine")
	add(f.Wagtail != "", "Wagtail")
	add(f.Tenants != nil, "django-tenants")
	add(f.PgSchemas != nil, "django-pgschemas")
	return out
}

// Table returns the db_table of model ("sites.Site"), or def when the
// registry did not name one.
func (i *Info) Table(model, def string) string {
	if t := i.Tables[model]; t != "" {
		return t
	}
	return def
}

// Database is one entry of settings.DATABASES. Password and SecretOptions
// are kept in memory: they are never printed, and the cache holds them
// encrypted (docs/django.md).
type Database struct {
	Engine string `json:"engine"`
	Name   string `json:"name"`
	Host   string `json:"host"`
	Port   string `json:"port"`
	User   string `json:"user"`
	// Password is never marshalled.
	Password string `json:"-"`
	// Options is OPTIONS without the entries whose key holds "pass".
	Options map[string]any `json:"options"`
	// SecretOptions are the OPTIONS entries whose key holds "pass"
	// (MySQL's password, passwd), as text. Never marshalled.
	SecretOptions map[string]string `json:"-"`
}

// Engine families (Database.Family).
const (
	FamilyPostgres = "postgres"
	FamilySQLite   = "sqlite"
	FamilyMySQL    = "mysql"
)

// Family is the engine's family: postgres (the stock backend, postgis,
// django-tenants' and django-pgschemas' wrappers, and other backends named
// postgresql), sqlite, mysql, or "" for anything else.
func (d Database) Family() string {
	e := strings.ToLower(d.Engine)
	switch {
	case strings.Contains(e, "postgres") || strings.Contains(e, "postgis") || strings.HasSuffix(e, "cockroachdb"):
		return FamilyPostgres
	case strings.Contains(e, "sqlite") || strings.Contains(e, "spatialite"):
		return FamilySQLite
	case strings.Contains(e, "mysql"):
		return FamilyMySQL
	}
	return ""
}

// String describes the entry without its password:
// "django.db.backends.postgresql app@db:5432/name".
func (d Database) String() string {
	if d.Family() == FamilySQLite {
		return d.Engine + " " + d.Name
	}
	host := d.Host
	if d.Port != "" {
		host += ":" + d.Port
	}
	user := ""
	if d.User != "" {
		user = d.User + "@"
	}
	return fmt.Sprintf("%s %s%s/%s", d.Engine, user, host, d.Name)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
