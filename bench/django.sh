#!/usr/bin/env bash
# bench/django.sh — what asking Django costs `siteplex sites`.
#
# Copies testdata/djfixed (Mezzanine-shaped: the database is named only in
# its settings), migrates it with Debian's Django and gives it 10 sites, then
# times with hyperfine, from a cold process each run:
#   warm      siteplex sites, introspection cache valid: no Python runs
#   cold      siteplex sites, cache removed before each run: Python runs
#             the embedded introspection script
#   django    Django's own start-up for the same settings (python -c
#             "django.setup()"), the floor of any cold run
#   python    the interpreter alone
# Targets: warm under 30 ms; cold no more than django + 100 ms.
#
# Usage: bench/django.sh   (SITEPLEX=bin/siteplex RUNS=30 PYTHON=/usr/bin/python3)
# Needs: go (unless SITEPLEX is set), hyperfine, Python with Django 3.2.
set -euo pipefail

RUNS=${RUNS:-30}
PYTHON=${PYTHON:-/usr/bin/python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
. "$repo/bench/lib.sh"
need_tools hyperfine hyperfine
"$PYTHON" -c 'import django' 2>/dev/null || { echo "bench/django.sh: $PYTHON cannot import django (apt-get install -y python3-django)" >&2; exit 1; }
bench_work siteplex-bench-django
bin=$(siteplex_bin "$repo")

proj=$work/project
cp -r "$repo/testdata/djfixed" "$proj"
cp -r "$repo/testdata/siteapp" "$proj/siteapp"
cd "$proj"
PYTHONDONTWRITEBYTECODE=1 "$PYTHON" manage.py migrate -v0
"$PYTHON" - <<'PY'
import sqlite3
db = sqlite3.connect("dev.db")
for i in range(4, 11):
    db.execute("INSERT INTO django_site (id, domain, name) VALUES (?, ?, ?)", (i, "site%d.example.com" % i, "Site %d" % i))
db.commit()
PY
export XDG_STATE_HOME=$work/state
n=$("$bin" --python "$PYTHON" sites --json | grep -c '"id"')
[ "$n" = 10 ] || { echo "bench/django.sh: expected 10 sites, got $n" >&2; exit 1; }

echo "siteplex sites on a 10-site project whose database is named in its settings ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)), $RUNS runs each:"
echo
hyperfine -N --warmup 3 --runs "$RUNS" --style none --export-json "$work/result.json" \
	--prepare true --prepare "rm -f $proj/.siteplex/django.json" --prepare true --prepare true \
	-n 'warm: siteplex sites (cache valid, no Python)' "$bin --python $PYTHON sites" \
	-n 'cold: siteplex sites (cache removed, introspection runs)' "$bin --python $PYTHON sites" \
	-n "django: $PYTHON -c django.setup()" "$PYTHON -B -c 'import os, django; os.environ[\"DJANGO_SETTINGS_MODULE\"] = \"mezzshape.settings\"; django.setup()'" \
	-n "python: $PYTHON -c pass" "$PYTHON -c pass" >/dev/null 2>"$work/hyperfine.err" ||
	{ cat "$work/hyperfine.err" >&2; exit 1; }
hyperfine_table "$work/result.json"
"$PYTHON" - "$work/result.json" <<'PY'
import json, sys
med = {r["command"].split(":")[0]: r["median"] * 1000 for r in json.load(open(sys.argv[1]))["results"]}
print()
print("warm %.1f ms (target < 30 ms); cold − django start-up = %.1f ms (target ≤ 100 ms)" % (med["warm"], med["cold"] - med["django"]))
PY
