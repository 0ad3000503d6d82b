#!/usr/bin/env bash
# bench/preload.sh — plain `manage.py runserver --noreload` per site versus
# site processes forked from one warm Django parent (devproxy/preload), on
# the small fixture (testdata/django) and the admin fixture
# (testdata/django-admin), 8 sites each. Runs BenchmarkPreload
# (devproxy/preload/bench_linux_test.go) and prints a markdown table:
#   first request   a site that is not running: start (fork) it, poll
#                   GET /whoami/ every 2 ms until 200
#   start 8 sites   the reload: 8 plain processes at once, or a new warm
#                   parent booted plus 8 forks, until all 8 answer
#   summed PSS      /proc/PID/smaps_rollup of every process once all 8
#                   answered (plain: 8 processes; preload: parent + 8)
# No assertions: it prints what it measured, with the machine's load.
#
# Usage: bench/preload.sh            (RUNS=5 iterations of the timed rows)
#        RUNS=10 bench/preload.sh
# Needs: go, /usr/bin/python3 with Django (python3-django), Linux.
set -euo pipefail

RUNS=${RUNS:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
/usr/bin/python3 -c 'import django' 2>/dev/null || {
	echo "bench/preload.sh: /usr/bin/python3 cannot import django (apt-get install -y python3-django)" >&2
	exit 1
}
out=$(mktemp /tmp/siteplex-bench-preload.XXXXXX)
trap 'rm -f "$out"' EXIT

cd "$repo"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
go test -run '^$' -bench 'BenchmarkPreload/.*/(first-request|start-8)/' -benchtime "${RUNS}x" ./devproxy/preload/ >"$out"
go test -run '^$' -bench 'BenchmarkPreload/.*/pss-8/' -benchtime 1x ./devproxy/preload/ >>"$out"
if grep -q -e '^--- FAIL' -e '^FAIL' -e 'SKIP' "$out"; then
	cat "$out" >&2
	exit 1
fi

echo "plain runserver per site vs forked from a warm parent: 8 sites, $(nproc) CPUs, load $load_before → $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs per timed row"
echo
awk '
/^BenchmarkPreload\// {
	split($1, n, "/"); sub(/-[0-9]+$/, "", n[4])
	key = n[2] SUBSEP n[3]; mode = n[4]
	if (!(key in seen)) { seen[key] = 1; order[++k] = key }
	v[key, mode, "ns"] = $3
	for (i = 4; i < NF; i++) if ($(i+1) ~ /MiB$/) v[key, mode, $(i+1)] = $i
}
function ms(ns) { return ns >= 1e9 ? sprintf("%.2f s", ns / 1e9) : sprintf("%.0f ms", ns / 1e6) }
END {
	label["first-request"] = "first request to a site that is not running"
	label["start-8"] = "start 8 sites (reload: boot + fork 8 vs 8 plain boots)"
	label["pss-8"] = "summed PSS of all processes, 8 sites served"
	print "| project | what | plain | preload | preload ÷ plain |"
	print "|---|---|---:|---:|---:|"
	for (j = 1; j <= k; j++) {
		split(order[j], kk, SUBSEP); p = kk[1]; m = kk[2]
		if (m == "pss-8") {
			a = v[order[j], "plain", "PSS-MiB"]; b = v[order[j], "preload", "PSS-MiB"]
			printf "| %s | %s | %.0f MiB | %.0f MiB (parent %.1f) | %.2f× |\n", p, label[m], a, b, v[order[j], "preload", "parent-PSS-MiB"], b / a
		} else {
			a = v[order[j], "plain", "ns"]; b = v[order[j], "preload", "ns"]
			printf "| %s | %s | %s | %s | %.2f× |\n", p, label[m], ms(a), ms(b), b / a
		}
	}
}' "$out"
