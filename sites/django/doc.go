// Package django asks a project's own Django what siteplex needs to know,
// and makes each dev process be its site without editing the project's
// settings (docs/django.md).
//
//   - Introspect runs an embedded script with the project's interpreter,
//     under the settings module the project itself uses, and returns an
//     Info: the databases, INSTALLED_APPS, MIDDLEWARE, ALLOWED_HOSTS, DEBUG,
//     SITE_ID and its kind, the site frameworks installed and their tables.
//     Load wraps it with a cache in .siteplex/ keyed by the files the
//     settings read, so a warm run starts no Python.
//   - Write generates the overlay settings module in .siteplex/overlay/, and
//     Overlay.ProcessEnv gives the environment that makes one process load
//     it: its site's SITE_ID, MEZZANINE_SITE_ID, the SiteID default,
//     ALLOWED_HOSTS and the identity probe.
//   - ParseProbe and Check turn the identity probe's answer into ✓ or a
//     loud ✗ with the reason.
//
// The package does not import package sites (sites imports it): it knows
// nothing of siteplex.toml or the site list.
package django
