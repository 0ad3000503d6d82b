# bench/lib.sh — helpers the bench scripts source (bench/*.sh).

# need_tools "TOOL..." "PACKAGE...": exits 1 naming what to apt-get install
# unless every tool is on PATH.
need_tools() {
	local tool
	for tool in $1; do
		command -v "$tool" >/dev/null || { echo "$(basename "$0"): $tool is missing (apt-get install -y $2)" >&2; exit 1; }
	done
}

# bench_work PREFIX: makes the run's temp folder $work and, on exit, stops
# the processes in the array pids, runs bench_cleanup_more when the script
# defines it, and removes $work.
bench_work() {
	work=$(mktemp -d "/tmp/$1.XXXXXX")
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	if declare -F bench_cleanup_more >/dev/null; then bench_cleanup_more; fi
	wait 2>/dev/null || true
	rm -rf "$work"
}

# siteplex_bin REPO: the absolute path of $SITEPLEX, or of siteplex built
# from REPO into $work (as `make build` does) when SITEPLEX is unset.
siteplex_bin() {
	local bin=${SITEPLEX:-}
	if [ -z "$bin" ]; then
		bin=$work/siteplex
		(cd "$1" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$bin" ./cmd/siteplex)
	fi
	realpath "$bin"
}

# hyperfine_table JSON...: the results of hyperfine --export-json files as
# one markdown table, in milliseconds, CPU (user+system) included: wall
# time depends on the neighbours on a shared machine, CPU time does not.
hyperfine_table() {
	python3 - "$@" <<'PY'
import json, sys
print("| Command | Median [ms] | Mean [ms] | Min [ms] | Max [ms] | CPU user+sys [ms] |")
print("|:---|---:|---:|---:|---:|---:|")
ms = lambda v: "%.1f" % (v * 1000)
for f in sys.argv[1:]:
    for r in json.load(open(f))["results"]:
        print("| `%s` | %s | %s ± %s | %s | %s | %s |" % (r["command"], ms(r["median"]), ms(r["mean"]), ms(r["stddev"]),
              ms(r["min"]), ms(r["max"]), ms(r["user"] + r["system"])))
PY
}

# serve_start LOG PATTERN ARGS...: runs `$SITEPLEX serve ARGS...` in the
# background (its pid in sp_pid and pids), stderr to LOG, and waits up to
# 10 s until LOG has a line matching PATTERN; exits 1 with the log if not.
serve_start() {
	local log=$1 pattern=$2
	shift 2
	"$SITEPLEX" serve "$@" 2>"$log" &
	sp_pid=$!
	pids+=("$sp_pid")
	for _ in $(seq 100); do grep -q "$pattern" "$log" && break; sleep 0.1; done
	grep -q "$pattern" "$log" || { echo "siteplex did not start:" >&2; cat "$log" >&2; exit 1; }
}

# caddy_start CHECK: runs Caddy on the Caddyfile read from stdin, with its
# own config and data folders under $work/caddy (its pid in cd_pid and
# pids), and waits up to 5 s until the command CHECK succeeds; exits 1 with
# Caddy's log if not.
caddy_start() {
	mkdir -p "$work/caddy"
	cat >"$work/caddy/Caddyfile"
	XDG_DATA_HOME=$work/caddy XDG_CONFIG_HOME=$work/caddy caddy run --config "$work/caddy/Caddyfile" --adapter caddyfile 2>"$work/caddy/log" &
	cd_pid=$!
	pids+=("$cd_pid")
	for _ in $(seq 50); do "$1" && break; sleep 0.1; done
	"$1" || { echo "caddy did not start:" >&2; cat "$work/caddy/log" >&2; exit 1; }
}

# wrk_run NAME PIDS CMD...: runs CMD (a `wrk --latency` command) and
# appends NAME's wrk_row, with the CPU ticks the processes PIDS and the
# backend $be_pid spent meanwhile, to $work/results.
wrk_run() {
	local name=$1 pidlist=$2 out c0 c1 b0 b1
	shift 2
	c0=$(cpu_ticks $pidlist)
	b0=$(cpu_ticks "$be_pid")
	out=$("$@")
	c1=$(cpu_ticks $pidlist)
	b1=$(cpu_ticks "$be_pid")
	echo "$out" | wrk_row "$name" $((c1 - c0)) $((b1 - b0)) >>"$work/results"
}

# cpu_ticks PID...: utime+stime of the processes (and their threads), in
# clock ticks.
cpu_ticks() {
	local t=0 p v
	for p in "$@"; do
		v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null) || continue
		t=$((t + v))
	done
	echo $t
}

# free_port: a free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# wrk_row NAME PROXY_TICKS BACKEND_TICKS: reads `wrk --latency` output and
# prints one line "name rps p50ms p99ms proxy_cpu_us_per_req non2xx
# backend_cpu_us_per_req" (proxy CPU -1 for the target "direct").
wrk_row() {
	awk -v name="$1" -v ticks="$2" -v bticks="$3" -v hz="$(getconf CLK_TCK)" '
		function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
		/^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
		/^Requests\/sec/ { rps = $2 }
		/requests in/ { n = $1 }
		/Non-2xx/ { bad = $NF }
		END { cpu = (name == "direct" || n == 0) ? -1 : ticks / hz * 1e6 / n
		      bcpu = n == 0 ? -1 : bticks / hz * 1e6 / n
		      printf "%s %.0f %.3f %.3f %.1f %d %.1f\n", name, rps, p50, p99, cpu, bad, bcpu }'
}

# bench_project DIR SITEPLEX NAME: a project in DIR with one declared site,
# slug bench and domain NAME, whose process is siteplex's demo site.
bench_project() {
	mkdir -p "$1"
	cat >"$1/siteplex.toml" <<TOML
[process]
command = ["$2", "demo-site", "--port", "{port}", "--site", "{slug}", "--site-id", "{site_id}"]

[sites.bench]
id = 1
domain = "$3"
TOML
}

# bench_backend ADDR: "port pid" of the site bench's process, from the
# engine's /api/status at ADDR (plain HTTP).
bench_backend() {
	curl -sf -H 'Host: siteplex.localhost' "http://$1/api/status" |
		python3 -c 'import json,sys; s=[s for s in json.load(sys.stdin)["sites"] if s["slug"]=="bench"][0]; print(s["port"], s["pid"])'
}
