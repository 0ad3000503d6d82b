package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/siteplex/siteplex/sites"
	"github.com/siteplex/siteplex/sites/django"
)

// Names of the checks that ask the project's Django (docs/django.md), in
// the order doctor runs them, after the database check.
const (
	NameSettings     = "django_settings"
	NameSiteID       = "site_id"
	NameAllowedHosts = "allowed_hosts"
	NameFrameworks   = "frameworks"
	NameOverlay      = "overlay"
)

// DjangoChecks asks the project's Django (through the introspection cache)
// and checks what siteplex needs from its settings: the settings module,
// the SITE_ID kind, ALLOWED_HOSTS against the names siteplex routes
// (list: the sites read, nil when none), the frameworks (src: where the
// database check read the sites from, nil when it could not), the overlay.
// needed is false when the processes do not run this Python (--runner
// docker, a custom command): then a Django that cannot be asked only warns.
func DjangoChecks(ctx context.Context, p *sites.Project, list []sites.Site, src *sites.SourceInfo, needed bool) []Check {
	rep, err := p.DjangoReport(ctx)
	settings := settingsCheck(p, rep, err, needed)
	if err != nil {
		skip := func(name string) Check {
			return Check{Name: name, Status: Warn, Detail: "not checked: Django's settings could not be read", Fix: "fix the django settings check above"}
		}
		return []Check{settings, skip(NameSiteID), skip(NameAllowedHosts), skip(NameFrameworks), overlayCheck(p, nil, overlayOf(p, rep.Guess))}
	}
	ov := overlayOf(p, rep.Guess)
	return []Check{settings, siteIDCheck(rep.Info, ov), allowedHostsCheck(rep.Info, list, ov), frameworksCheck(rep.Info, src), overlayCheck(p, rep.Info, ov)}
}

// overlayState is whether the overlay takes effect in the dev processes,
// and why not.
type overlayState struct {
	// on: the overlay is enabled and manage.py lets it load.
	on bool
	// off says why it does not take effect: "the overlay is off", or
	// that manage.py assigns DJANGO_SETTINGS_MODULE ("" when on).
	off string
	// fix is what makes it take effect.
	fix string
	// assigns: manage.py assigns DJANGO_SETTINGS_MODULE (to module).
	assigns bool
	module  string
}

func overlayOf(p *sites.Project, g django.SettingsGuess) overlayState {
	switch {
	case g.ManagePyAssigns:
		return overlayState{assigns: true, module: g.Module,
			off: fmt.Sprintf("the overlay cannot take effect: manage.py assigns os.environ[\"DJANGO_SETTINGS_MODULE\"] = %q, which overrides siteplex's settings module in every process", g.Module),
			fix: fmt.Sprintf("change it to os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", %q) in manage.py, as Django's template does", g.Module)}
	case !p.OverlayEnabled():
		return overlayState{off: "the overlay is off", fix: "turn the overlay on (remove overlay = false / --no-overlay)"}
	}
	return overlayState{on: true}
}

func settingsCheck(p *sites.Project, rep sites.DjangoReport, err error, needed bool) Check {
	st := Fail
	if !needed {
		st = Warn
	}
	if err != nil {
		fix := "fix the error above in the settings (it is the last line of the traceback), or set DJANGO_SETTINGS_MODULE in " + filepath.Base(p.Env.Path)
		switch {
		case errors.Is(err, django.ErrNoPython):
			fix = "create the project's virtualenv (python3 -m venv .venv), or name the interpreter with --python or python in siteplex.toml"
		case sites.IsNoDjango(err):
			fix = fmt.Sprintf("install the project's requirements into %s, or %s", rep.Python, sites.PythonFix)
		}
		return bad(NameSettings, st, err.Error()+"; siteplex falls back to what it sees without Django (a DATABASE_URL, a compose database or db.sqlite3; the site tables that exist) and runs the processes without the overlay", fix)
	}
	info := rep.Info
	how := "asked Django " + info.Django + " with " + rep.Python
	if rep.Outcome.Cached {
		how += ", cached in .siteplex/django.json"
	}
	from := info.SettingsFrom
	if from == "environment" && rep.Guess.From != "" {
		from = rep.Guess.From
	}
	detail := fmt.Sprintf("%s (from %s; %s)", info.SettingsModule, from, how)
	if info.SetupError != "" {
		return bad(NameSettings, Warn, detail+"; django.setup() failed: "+info.SetupError,
			"the site frameworks were read from INSTALLED_APPS only; fix the app that fails to load")
	}
	if rep.Guess.ManagePyAssigns {
		return bad(NameSettings, Fail, detail+"; manage.py assigns os.environ[\"DJANGO_SETTINGS_MODULE\"], so the overlay cannot take effect",
			"use os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", ...) in manage.py, as Django's template does")
	}
	return ok(NameSettings, detail)
}

func siteIDCheck(info *django.Info, ov overlayState) Check {
	s := info.SiteID
	fw := info.Frameworks
	on := ov.on
	desc := s.String()
	switch {
	case !fw.Sites:
		what := "siteplex's per-process SITE_ID does not apply"
		if fw.Wagtail != "" || fw.Tenants != nil || fw.PgSchemas != nil {
			what = "the site comes from the Host (" + strings.Join(fw.Installed(), ", ") + "), not from SITE_ID"
		}
		return ok(NameSiteID, desc+"; django.contrib.sites is not installed: "+what)
	case s.Kind == django.KindEnv && ov.assigns:
		return ok(NameSiteID, desc+": siteplex sets $"+s.EnvVar+" per process; "+ov.off+", so that variable alone picks the site")
	case s.Kind == django.KindEnv:
		return ok(NameSiteID, desc+": siteplex sets $"+s.EnvVar+" per process (and the overlay sets SITE_ID)")
	case s.Kind == django.KindOther:
		return bad(NameSiteID, Fail, desc+": Django's check sites.E101 rejects it", "make SITE_ID an int: SITE_ID = int(os.environ.get(\"SITE_ID\", 1))")
	case on && s.Kind == django.KindObject:
		return ok(NameSiteID, desc+": the overlay gives each process a "+s.Class[strings.LastIndexByte(s.Class, '.')+1:]+" with its site as the default")
	case on:
		return ok(NameSiteID, desc+": the overlay sets SITE_ID per process (per request in single mode)")
	case s.Kind == django.KindInt:
		fix := "turn the overlay on (remove overlay = false / --no-overlay), or read it from the environment: SITE_ID = int(os.environ.get(\"SITE_ID\", 1))"
		if ov.assigns {
			fix = ov.fix
		}
		return bad(NameSiteID, Fail, desc+" is fixed in "+info.SettingsModule+" and "+ov.off+": every process serves site "+fmt.Sprint(s.Value), fix)
	case s.Kind == django.KindObject:
		fix := "turn the overlay on, or build the default from the environment: SITE_ID = SiteID(default=int(os.environ.get(\"SITE_ID\", 1)))"
		if ov.assigns {
			fix = ov.fix
		}
		return bad(NameSiteID, Fail, desc+" and "+ov.off+": every process serves the object's default", fix)
	}
	fix := "turn the overlay on, or set SITE_ID = int(os.environ.get(\"SITE_ID\", 1))"
	if ov.assigns {
		fix = ov.fix
	}
	return bad(NameSiteID, Warn, desc+" and "+ov.off+": Django picks the site from the Host, which siteplex's local names do not match", fix)
}

// routedNames are the names siteplex routes to the sites' processes.
func routedNames(list []sites.Site) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		n = strings.ToLower(sites.StripPort(strings.TrimSpace(n)))
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	add("localhost")
	for _, s := range list {
		if !s.Usable() || !s.Enabled {
			continue
		}
		add(s.LocalDomain)
		if sites.HostsName(s.Domain) {
			add(s.Domain)
		}
	}
	return out
}

// allowedBy reports whether Django's validate_host admits host.
func allowedBy(host string, patterns []string) bool {
	for _, p := range patterns {
		p = strings.ToLower(p)
		switch {
		case p == "*", p == host:
			return true
		case strings.HasPrefix(p, ".") && (host == p[1:] || strings.HasSuffix(host, p)):
			return true
		}
	}
	return false
}

func allowedHostsCheck(info *django.Info, list []sites.Site, ov overlayState) Check {
	on := ov.on
	if info.AllowedHostsLazy != "" {
		if on {
			return ok(NameAllowedHosts, "ALLOWED_HOSTS is a "+info.AllowedHostsLazy+" (read from the database at run time); the overlay adds the names routed to each process")
		}
		return bad(NameAllowedHosts, Warn, "ALLOWED_HOSTS is a "+info.AllowedHostsLazy+", which siteplex cannot read, and "+ov.off+": local names such as "+firstLocal(list)+" may answer 400",
			ov.fix+", or add \".localhost\" to ALLOWED_HOSTS")
	}
	patterns := info.AllowedHosts
	shown := fmt.Sprintf("%q", patterns)
	if len(patterns) == 0 && info.Debug {
		patterns = []string{".localhost", "127.0.0.1", "[::1]"}
		shown = "[] (DEBUG: Django admits .localhost, 127.0.0.1, [::1])"
	}
	var missing []string
	for _, n := range routedNames(list) {
		if !allowedBy(n, patterns) {
			missing = append(missing, n)
		}
	}
	switch {
	case len(missing) == 0:
		return ok(NameAllowedHosts, "ALLOWED_HOSTS = "+shown+" admits every routed name")
	case on:
		return ok(NameAllowedHosts, fmt.Sprintf("ALLOWED_HOSTS = %s does not admit %s; the overlay adds the names routed to each process", shown, list3(missing)))
	}
	fix := ov.fix + ", or add \".localhost\" and the sites' domains to ALLOWED_HOSTS"
	if info.Frameworks.Mezzanine {
		fix += " (Mezzanine: an empty ALLOWED_HOSTS admits every django_site domain, but not the local names)"
	}
	return bad(NameAllowedHosts, Fail, fmt.Sprintf("ALLOWED_HOSTS = %s rejects %s, and %s: those requests answer 400", shown, list3(missing), ov.off), fix)
}

func firstLocal(list []sites.Site) string {
	for _, s := range list {
		if s.LocalDomain != "" {
			return s.LocalDomain
		}
	}
	return "gh.localhost"
}

func list3(names []string) string {
	if len(names) > 3 {
		return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
	}
	return strings.Join(names, ", ")
}

// frameworksCheck names the site frameworks the settings install and
// where siteplex reads the sites from: src, the source the database check
// used (docs/sites.md, "Where the sites come from"), else the one the
// frameworks point at.
func frameworksCheck(info *django.Info, src *sites.SourceInfo) Check {
	fw := info.Frameworks
	names := fw.Installed()
	if len(names) == 0 {
		if src != nil && src.Source == sites.SourceConfig {
			return ok(NameFrameworks, "no site framework in INSTALLED_APPS; siteplex uses the sites declared in siteplex.toml")
		}
		return bad(NameFrameworks, Warn, "no site framework in INSTALLED_APPS (django.contrib.sites, django-multisite, Mezzanine, Wagtail, django-tenants, django-pgschemas)",
			"add django.contrib.sites to INSTALLED_APPS and run migrate, or declare the sites in siteplex.toml ([sites.<slug>])")
	}
	var parts []string
	for _, n := range names {
		switch n {
		case "django.contrib.sites":
			n += " (" + info.Table("sites.Site", "django_site") + ")"
		case "django-multisite":
			n += " (" + info.Table("multisite.Alias", "multisite_alias") + ")"
		case "django-multisite-plus":
			n += " (" + info.Table("django_multisite_plus.Site", "django_multisite_plus_site") + ")"
		case "Wagtail":
			n += " (" + info.Table("wagtailcore.Site", "wagtailcore_site") + ")"
		case "django-tenants":
			n += tablesNote(fw.Tenants.TenantTable, fw.Tenants.DomainTable, "")
		case "django-pgschemas":
			n += tablesNote(fw.PgSchemas.TenantTable, fw.PgSchemas.DomainTable, fmt.Sprintf("%d static tenants", len(fw.PgSchemas.Static)))
		}
		parts = append(parts, n)
	}
	detail := strings.Join(parts, ", ")
	switch {
	case src != nil && src.Source == sites.SourceConfig:
		detail += "; siteplex uses the sites declared in siteplex.toml"
	case src != nil:
		detail += "; siteplex reads the sites from " + src.String()
	default:
		detail += "; siteplex reads the sites from " + routingTables(fw) + " (not read yet: see the database check)"
	}
	if fw.Sites && fw.Wagtail != "" && fw.Tenants == nil && fw.PgSchemas == nil {
		detail += "; Wagtail routes pages by wagtailcore_site, while django_site (not listed) is what django-allauth and get_current_site use"
	}
	return ok(NameFrameworks, detail)
}

// routingTables names the tables of the framework that routes requests,
// in the order siteplex picks it (django-tenants, django-pgschemas,
// Wagtail, then django_site).
func routingTables(fw django.Frameworks) string {
	switch {
	case fw.Tenants != nil:
		return "django-tenants' tenant and domain tables"
	case fw.PgSchemas != nil:
		return "django-pgschemas' tenant and domain tables and its static tenants"
	case fw.Wagtail != "":
		return "wagtailcore_site"
	}
	return "django_site"
}

// tablesNote is " (a, b, extra)" with the empty parts left out.
func tablesNote(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
}

func overlayCheck(p *sites.Project, info *django.Info, ov overlayState) Check {
	file := filepath.Join(p.OverlayDir(), django.OverlayModule+".py")
	state := "not written yet"
	if _, err := os.Stat(file); err == nil {
		state = "written"
	}
	switch {
	case ov.assigns && !p.OverlayEnabled():
		return bad(NameOverlay, Warn, file+" ("+state+"); off, and manage.py assigns os.environ[\"DJANGO_SETTINGS_MODULE\"], so not even the identity probe loads: siteplex cannot tell which site a process serves", ov.fix)
	case ov.assigns:
		return bad(NameOverlay, Fail, file+" ("+state+"); "+ov.off+": no process gets each site's SITE_ID, the routed ALLOWED_HOSTS or the identity probe", ov.fix)
	case !p.OverlayEnabled():
		return ok(NameOverlay, file+" ("+state+"); off: the settings run as they are, only the identity probe is added")
	}
	if info == nil {
		return bad(NameOverlay, Warn, file+": cannot be used without the project's settings module", "fix the django settings check above")
	}
	return ok(NameOverlay, fmt.Sprintf("%s (%s); imports %s, then sets each process's site, ALLOWED_HOSTS, SECURE_PROXY_SSL_HEADER and the identity probe", file, state, info.SettingsModule))
}
