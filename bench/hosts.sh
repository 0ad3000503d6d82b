#!/usr/bin/env bash
# bench/hosts.sh — `siteplex hosts apply` of 10,000 sites into a 1 MB hosts
# file, through the real binary (process start, loading 10,000 sites from a
# SQLite django_site table, lock, backup, temp file, fsync, rename), and the
# same apply again when nothing changes (no write). Issue 3's targets: under
# 100 ms and under 20 ms.
#
# Rows:
#   version        `siteplex --version`: process start alone
#   sites --json   loading the 10,000 sites (what every hosts command pays)
#   apply 10k      apply into the 1 MB file without a block (a fresh copy
#                  before each run, outside the timing)
#   no-op apply    the same apply when the block is there: nothing written
#   dry-run apply  the diff of apply 10k, printed to /dev/null
# then `go test -bench` of the hosts package alone (no sites loading).
#
# Usage: bench/hosts.sh   (builds siteplex into a temp folder)
#        SITEPLEX=/path/to/siteplex RUNS=30 bench/hosts.sh
# Needs: hyperfine, sqlite3, go.
set -euo pipefail

RUNS=${RUNS:-30}
cd "$(dirname "$0")/.."
. bench/lib.sh
need_tools "hyperfine sqlite3 go" "hyperfine sqlite3 golang"
bench_work siteplex-bench-hosts
bin=$(siteplex_bin .)

# A project with 10,000 sites in SQLite.
mkdir -p "$work/proj" "$work/state"
touch "$work/proj/manage.py"
sqlite3 "$work/db.sqlite3" <<'SQL'
CREATE TABLE django_site (id integer PRIMARY KEY, domain varchar(100) NOT NULL UNIQUE, name varchar(50) NOT NULL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 10000)
INSERT INTO django_site SELECT i, printf('site%05d.example.test', i), printf('Site %d', i) FROM c;
SQL
# A 1 MB hosts file (a blocklist), CRLF, no final newline.
python3 - "$work/hosts.orig" <<'PY'
import sys
out = ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
i = 0
while sum(len(l) + 2 for l in out) < 1 << 20:
    out.append(f"0.0.0.0 ads{i}.tracker-{i % 97}.example.com")
    i += 1
open(sys.argv[1], "w", newline="").write("\r\n".join(out))
PY
export XDG_STATE_HOME=$work/state SITEPLEX_HOSTS_FILE=
sp="$bin --project $work/proj --db sqlite:///$work/db.sqlite3 --hosts-file $work/hosts"

cp "$work/hosts.orig" "$work/hosts"
$sp hosts apply >/dev/null
lines=$(grep -c 'siteplex\|127.0.0.1 site\|::1 site' "$work/hosts" || true)
size=$(stat -c %s "$work/hosts.orig")
echo "hosts file: $size bytes before; block: $lines lines; $RUNS runs each; $(nproc) CPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo

hyperfine --warmup 3 --runs "$RUNS" -N --export-json "$work/a.json" --style none \
	-n 'version' "$bin --version" \
	-n 'sites --json (10k)' "$sp sites --json" >/dev/null
hyperfine --warmup 3 --runs "$RUNS" -N --export-json "$work/b.json" --style none \
	--prepare "cp $work/hosts.orig $work/hosts" \
	-n 'apply 10k into 1 MB' "$sp hosts apply" \
	-n 'dry-run apply 10k' "$sp hosts apply --dry-run" >/dev/null
cp "$work/hosts.orig" "$work/hosts"
$sp hosts apply >/dev/null
hyperfine --warmup 3 --runs "$RUNS" -N --export-json "$work/c.json" --style none \
	-n 'no-op apply 10k' "$sp hosts apply" >/dev/null
hyperfine_table "$work/a.json" "$work/b.json" "$work/c.json"
echo
echo "go test -bench (hosts package alone, safe writer included):"
go test ./hosts -run '^$' -bench . -benchtime 30x -count 3 | grep '^Benchmark'
