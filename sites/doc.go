// Package sites finds a Django project, its configuration and its database,
// and reads the project's sites from django.contrib.sites,
// django-multisite and django-multisite-plus tables.
//
// It owns the Site model every other package works with: slug derivation,
// the local domain format, hostname validation into Problems, and the
// forced SITE_ID. Readers exist for PostgreSQL (pgx/v5) and SQLite
// (modernc.org/sqlite, opened read-only unless a command writes).
package sites
