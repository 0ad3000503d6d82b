#!/usr/bin/env bash
# bench/sites.sh — wall time of `siteplex sites` on a 10-site SQLite project.
#
# Builds a throw-away Django-style project (manage.py, .env-local with
# SITE_ID, db.sqlite3 with Django 3.2's django_site, multisite_alias and
# django_multisite_plus_site tables holding 10 sites), then times with
# hyperfine, from a cold process each run:
#   sites         the aligned table
#   sites --json  the JSON array
#   sites --db    with the database named, so no Docker container lookup
#   --version     the process start alone (the floor)
# Target: `siteplex sites` under 30 ms. Prints a markdown table.
#
# Usage: bench/sites.sh               (builds siteplex into a temp folder)
#        SITEPLEX=bin/siteplex RUNS=100 bench/sites.sh
# Needs: go (unless SITEPLEX is set), hyperfine, python3 (its sqlite3 module).
set -euo pipefail

RUNS=${RUNS:-50}
SITES=${SITES:-10}

repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/bench/lib.sh"
need_tools "hyperfine python3" "hyperfine python3"
bench_work siteplex-bench-sites
bin=$(siteplex_bin "$repo")

proj=$work/project
mkdir -p "$proj"
: >"$proj/manage.py"
printf 'SITE_ID=2\n' >"$proj/.env-local"
python3 - "$proj/db.sqlite3" "$SITES" <<'PY'
import sqlite3, sys
path, n = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
db.executescript('''
CREATE TABLE "django_site" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  "domain" varchar(100) NOT NULL UNIQUE, "name" varchar(50) NOT NULL);
CREATE TABLE "multisite_alias" ("id" integer NOT NULL PRIMARY KEY AUTOINCREMENT, "domain" varchar(100) NOT NULL UNIQUE,
  "site_id" integer NOT NULL REFERENCES "django_site" ("id") DEFERRABLE INITIALLY DEFERRED,
  "is_canonical" bool NULL, "redirect_to_canonical" bool NOT NULL);
CREATE UNIQUE INDEX "multisite_alias_is_canonical_site_id_6bc86489_uniq" ON "multisite_alias" ("is_canonical", "site_id");
CREATE INDEX "multisite_alias_site_id_e73f0f15" ON "multisite_alias" ("site_id");
CREATE TABLE "django_multisite_plus_site" ("site_id" integer NOT NULL PRIMARY KEY
  REFERENCES "django_site" ("id") DEFERRABLE INITIALLY DEFERRED, "real_domain" varchar(255) NOT NULL,
  "slug" varchar(255) NOT NULL UNIQUE, "is_enabled" bool NOT NULL, "last_updated_at" datetime NOT NULL,
  "extra_uwsgi_ini" text NOT NULL);
''')
for i in range(1, n + 1):
    db.execute("INSERT INTO django_site VALUES (?, ?, ?)", (i, "site%d.example.com" % i, "Site %d" % i))
    if i % 3:
        db.execute("INSERT INTO django_multisite_plus_site VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP, '')",
                   (i, "www.site%d.example.com" % i, "s%d" % i, i % 5 != 0))
    db.execute("INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES (?, ?, 1, 1)",
               ("site%d.example.com" % i, i))
    if i % 2 == 0:
        db.execute("INSERT INTO multisite_alias (domain, site_id, is_canonical, redirect_to_canonical) VALUES (?, ?, NULL, 1)",
                   ("alias%d.example.net" % i, i))
db.commit()
PY

cd "$proj"
# Sanity check: the command works and lists every site.
n=$("$bin" sites --json | grep -c '"id"')
[ "$n" = "$SITES" ] || { echo "bench/sites.sh: expected $SITES sites, got $n" >&2; exit 1; }

echo "siteplex sites on a $SITES-site SQLite project ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)), $RUNS runs each:"
echo
hyperfine -N --warmup 5 --runs "$RUNS" --style none --export-json "$work/result.json" \
	-n 'siteplex sites' "$bin sites" \
	-n 'siteplex sites --json' "$bin sites --json" \
	-n 'siteplex sites --db sqlite:///db.sqlite3 (no Docker lookup)' "$bin sites --db sqlite:///db.sqlite3" \
	-n 'siteplex --version (process start)' "$bin --version" >/dev/null 2>"$work/hyperfine.err" ||
	{ cat "$work/hyperfine.err" >&2; exit 1; }
hyperfine_table "$work/result.json"
echo
echo "Target: siteplex sites under 30 ms (median)."
