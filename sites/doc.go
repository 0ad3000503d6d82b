// Package sites finds a Django project, its configuration and its database,
// and reads the project's sites from the tables of the framework that
// routes requests: django.contrib.sites (with django-multisite and
// django-multisite-plus), Wagtail, django-tenants or django-pgschemas
// (source.go).
//
// It owns the Site model every other package works with: slug derivation,
// the local domain format, hostname validation into Problems, wildcard
// aliases, and the forced SITE_ID. Readers exist for PostgreSQL (pgx/v5),
// MySQL/MariaDB (go-sql-driver/mysql) and SQLite (modernc.org/sqlite,
// opened read-only unless a command writes).
package sites
