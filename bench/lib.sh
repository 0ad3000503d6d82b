# bench/lib.sh — helpers the bench scripts source (bench/proxy.sh,
# bench/https.sh).

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
