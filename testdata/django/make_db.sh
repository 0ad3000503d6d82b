#!/bin/sh
# Rebuilds db.sqlite3: Django 3.2's migrations plus the fixture's sites.
# Run from anywhere: sh testdata/django/make_db.sh
set -eu
cd "$(dirname "$0")"
rm -f db.sqlite3
PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 manage.py migrate --noinput >/dev/null
/usr/bin/python3 - <<'PY'
import sqlite3
db = sqlite3.connect("db.sqlite3")
db.execute("DELETE FROM django_site")
db.executemany(
    "INSERT INTO django_site (id, domain, name) VALUES (?, ?, ?)",
    [
        (1, "alpha.example.com", "Alpha"),
        (2, "beta.example.com", "Beta"),
        (3, "www.gamma.example.org", "Gamma"),
        (5, "delta.example.net:8000", "Delta"),
    ],
)
db.commit()
db.execute("VACUUM")
db.close()
PY
