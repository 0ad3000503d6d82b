#!/usr/bin/env bash
# bench/preload.sh — plain `manage.py runserver --noreload` per site versus
# site processes forked from one warm Django parent, on the small fixture
# (testdata/django) and the admin fixture (testdata/django-admin), 8 sites
# each, in one run. Two tables:
#
# 1. Through `siteplex serve` (BenchmarkServePreload, the real binary,
#    cmd/siteplex/bench_preload_linux_test.go): serve without and with
#    --preload, with the targets of docs/preload.md:
#   first request   a stopped site (stopped through the API): one GET
#                   /whoami/ through the proxy until it answers
#   reload 8 sites  the 8 running; from touching a .py file until all 8
#                   answer through the proxy from new processes (the
#                   watcher's 300 ms debounce included)
#   summed PSS      the 8 site processes (and the warm parent) once all 8
#                   answered
#
# 2. The preload package alone (BenchmarkPreload,
#    devproxy/preload/bench_linux_test.go):
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
#        ONLY=serve bench/preload.sh  (only the first table; ONLY=package the second)
# Needs: go, /usr/bin/python3 with Django (python3-django), Linux.
set -euo pipefail

RUNS=${RUNS:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
/usr/bin/python3 -c 'import django' 2>/dev/null || {
	echo "bench/preload.sh: /usr/bin/python3 cannot import django (apt-get install -y python3-django)" >&2
	exit 1
}
ONLY=${ONLY:-}
out=$(mktemp /tmp/siteplex-bench-preload.XXXXXX)
sout=$(mktemp /tmp/siteplex-bench-preload-serve.XXXXXX)
trap 'rm -f "$out" "$sout"' EXIT

cd "$repo"
check() {
	if grep -q -e '^--- FAIL' -e '^FAIL' -e 'SKIP' "$1"; then
		cat "$1" >&2
		exit 1
	fi
}

if [ "$ONLY" != package ]; then
	load_before=$(cut -d' ' -f1-3 /proc/loadavg)
	go test -run '^$' -bench 'BenchmarkServePreload/.*/(first-request|reload-8)/' -benchtime "${RUNS}x" ./cmd/siteplex/ >"$sout"
	go test -run '^$' -bench 'BenchmarkServePreload/.*/pss-8/' -benchtime 1x ./cmd/siteplex/ >>"$sout"
	check "$sout"
	echo "siteplex serve vs siteplex serve --preload: 8 sites, $(nproc) CPUs, load $load_before → $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs per timed row"
	echo
	awk '
/^BenchmarkServePreload\// {
	split($1, n, "/"); sub(/-[0-9]+$/, "", n[4])
	key = n[2] SUBSEP n[3]; mode = n[4]
	seen[key] = 1
	v[key, mode, "ns"] = $3
	for (i = 4; i < NF; i++) if ($(i+1) ~ /MiB$/) v[key, mode, $(i+1)] = $i
}
function ms(ns) { return ns >= 1e9 ? sprintf("%.2f s", ns / 1e9) : sprintf("%.0f ms", ns / 1e6) }
END {
	label["first-request"] = "first request to a stopped site"; target["first-request"] = 0.4
	label["reload-8"] = "reload: touch a .py → all 8 serve from new processes"; target["reload-8"] = 0.5
	label["pss-8"] = "summed PSS, 8 site processes (+ warm parent)"; target["pss-8"] = 0.5
	print "| project | what | serve | serve --preload | ÷ | target | |"
	print "|---|---|---:|---:|---:|---:|---|"
	split("small admin", projects, " "); split("first-request reload-8 pss-8", whats, " ")
	for (pi = 1; pi <= 2; pi++) for (wi = 1; wi <= 3; wi++) {
		p = projects[pi]; m = whats[wi]; key = p SUBSEP m
		if (!(key in seen)) continue
		if (m == "pss-8") {
			a = v[key, "plain", "PSS-MiB"]; b = v[key, "preload", "PSS-MiB"]
			as = sprintf("%.0f MiB", a); bs = sprintf("%.0f MiB (parent %.1f)", b, v[key, "preload", "parent-PSS-MiB"])
		} else {
			a = v[key, "plain", "ns"]; b = v[key, "preload", "ns"]
			as = ms(a); bs = ms(b)
		}
		r = b / a
		printf "| %s | %s | %s | %s | %.2f× | ≤ %.1f× | %s |\n", p, label[m], as, bs, r, target[m], (r <= target[m] ? "met" : "MISSED")
	}
}' "$sout"
	echo
fi
[ "$ONLY" = serve ] && exit 0

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
go test -run '^$' -bench 'BenchmarkPreload/.*/(first-request|start-8)/' -benchtime "${RUNS}x" ./devproxy/preload/ >"$out"
go test -run '^$' -bench 'BenchmarkPreload/.*/pss-8/' -benchtime 1x ./devproxy/preload/ >>"$out"
check "$out"

echo "the preload package alone — plain runserver per site vs forked from a warm parent: 8 sites, $(nproc) CPUs, load $load_before → $(cut -d' ' -f1-3 /proc/loadavg), $RUNS runs per timed row"
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
