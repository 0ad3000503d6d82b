#!/usr/bin/env bash
# bench/proxy.sh — siteplex's proxy against Caddy, nginx and no proxy at all.
#
# One run on loopback, interleaved rounds, medians: wrk against
#   direct   the backend itself (siteplex demo-site /plain, ~40 bytes)
#   siteplex `siteplex serve` in front of that same backend process
#   caddy    Caddy (Debian caddy) with a plain `reverse_proxy` to the same
#            backend (its defaults: keep-alive pool, X-Forwarded-*)
#   nginx    nginx (Debian nginx-light) with a keepalive upstream and
#            worker_processes auto, in front of the same backend
# with the CPU per request of the proxy and of the backend (the same
# process in all of them), then siteplex's cold start (first request to a
# stopped site, minus the backend's own time from exec to accepting) and
# its idle RSS. It ends with the targets: siteplex at least 1.3x Caddy's
# req/s with a p99 no higher than Caddy's, idle RSS under 20 MiB.
#
# Usage: bench/proxy.sh            (builds siteplex into a temp folder)
#        SITEPLEX=/path/to/siteplex DURATION=5s CONNS=32 ROUNDS=3 bench/proxy.sh
# Needs: wrk, caddy, nginx, curl, python3.
set -euo pipefail

DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
COLD_RUNS=${COLD_RUNS:-5}

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
need_tools "wrk caddy nginx curl python3" "wrk caddy nginx-light curl python3"
bench_work siteplex-bench
bench_cleanup_more() { [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; }
SITEPLEX=$(siteplex_bin "$here") # absolute: the project's command runs from another folder

# A project with one declared site whose process is the demo site.
bench_project "$work/proj" "$SITEPLEX" bench.localhost

serve_start "$work/serve.log" 'listening on' --project "$work/proj" --listen 127.0.0.1:0 --no-watch --idle-timeout 0
sp_addr=$(sed -n 's/^siteplex: listening on //p' "$work/serve.log" | head -1)

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
rss_idle=$(rss_kib "$sp_pid")

# The first request starts the backend; its port comes from /api/status.
curl -sf -o /dev/null -H 'Host: bench.localhost' "http://$sp_addr/plain"
read -r be_port be_pid < <(bench_backend "$sp_addr")
be_addr=127.0.0.1:$be_port

# Caddy with its own config and data folders, no admin API, no HTTPS.
cd_port=$(free_port)
cd_ok() { curl -sf -o /dev/null -H 'Host: bench.localhost' "http://127.0.0.1:$cd_port/plain"; }
caddy_start cd_ok <<EOF
{
	admin off
	auto_https off
}
:$cd_port {
	bind 127.0.0.1
	reverse_proxy $be_addr
}
EOF

# nginx with its own prefix, temp folders and config.
ng_port=$(free_port)
mkdir -p "$work/nginx/logs" "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx/logs/error.log warn;
daemon on;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/nginx/tmp/body;
	proxy_temp_path $work/nginx/tmp/proxy;
	fastcgi_temp_path $work/nginx/tmp/fastcgi;
	uwsgi_temp_path $work/nginx/tmp/uwsgi;
	scgi_temp_path $work/nginx/tmp/scgi;
	upstream backend { server $be_addr; keepalive 256; }
	server {
		listen 127.0.0.1:$ng_port;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto \$scheme;
			proxy_set_header X-Forwarded-Host \$host;
		}
	}
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
for _ in $(seq 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
curl -sf -o /dev/null -H 'Host: bench.localhost' "http://127.0.0.1:$ng_port/plain"

nginx_pids() { pgrep -P "$(cat "$work/nginx.pid")" | tr '\n' ' '; cat "$work/nginx.pid"; }

# run NAME ADDR PIDS: one wrk run, a row in $work/results.
run() { wrk_run "$1" "$3" wrk -t1 -c"$CONNS" -d"$DURATION" --latency -H 'Host: bench.localhost' "http://$2/plain"; }

for target in "direct $be_addr" "siteplex $sp_addr" "caddy 127.0.0.1:$cd_port" "nginx 127.0.0.1:$ng_port"; do
	set -- $target
	wrk -t1 -c"$CONNS" -d"$WARMUP" -H 'Host: bench.localhost' "http://$2/plain" >/dev/null
done
rss_loaded_before=$(rss_kib "$sp_pid")
for r in $(seq "$ROUNDS"); do
	run direct "$be_addr" "$be_pid"
	run siteplex "$sp_addr" "$sp_pid"
	run caddy "127.0.0.1:$cd_port" "$cd_pid"
	run nginx "127.0.0.1:$ng_port" "$(nginx_pids)"
done
rss_loaded=$(rss_kib "$sp_pid")

# Cold start: stop the site, time the first request; compare with the
# backend's own exec-to-accept time.
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$work/proj/.siteplex/engine.json")
cold=()
for _ in $(seq "$COLD_RUNS"); do
	curl -sf -o /dev/null -X POST -H "Authorization: Bearer $token" -H 'Host: siteplex.localhost' "http://$sp_addr/api/sites/bench/stop"
	t=$(curl -sf -o /dev/null -w '%{time_total}' -H 'Host: bench.localhost' "http://$sp_addr/plain")
	cold+=("$t")
done
own=$(python3 - "$SITEPLEX" "$COLD_RUNS" <<'EOF'
import socket, subprocess, sys, time, statistics
exe, runs = sys.argv[1], int(sys.argv[2])
out = []
for _ in range(runs):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    t0 = time.perf_counter()
    p = subprocess.Popen([exe, "demo-site", "--port", str(port)], stderr=subprocess.DEVNULL)
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(0.001)
    out.append(time.perf_counter() - t0)
    p.terminate(); p.wait()
print(statistics.median(out))
EOF
)

python3 - "$work/results" "$rss_idle" "$rss_loaded" "$own" "${cold[@]}" <<'EOF'
import sys, statistics
from collections import defaultdict
res = defaultdict(list)
for line in open(sys.argv[1]):
    name, rps, p50, p99, cpu, bad, bcpu = line.split()
    res[name].append((float(rps), float(p50), float(p99), float(cpu), int(bad), float(bcpu)))
rss_idle, rss_loaded, own = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
cold = [float(x) for x in sys.argv[5:]]
med = lambda xs: statistics.median(xs)
direct = med([r[0] for r in res["direct"]])
print(f"wrk -t1 -c{__import__('os').environ.get('CONNS','32')} -d{__import__('os').environ.get('DURATION','5s')}, {len(res['direct'])} interleaved rounds, medians; backend: siteplex demo-site /plain")
print()
print("| target | req/s | of direct | p50 ms | p99 ms | proxy CPU µs/req | backend CPU µs/req | non-2xx | req/s per round |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for name in ("direct", "siteplex", "caddy", "nginx"):
    rs = res[name]
    rps, p50, p99, cpu = (med([r[i] for r in rs]) for i in range(4))
    bad = sum(r[4] for r in rs)
    bcpu = med([r[5] for r in rs])
    cpus = "–" if cpu < 0 else f"{cpu:.1f}"
    per = " ".join(f"{r[0]:,.0f}" for r in rs)
    print(f"| {name} | {rps:,.0f} | {100*rps/direct:.0f} % | {p50:.2f} | {p99:.2f} | {cpus} | {bcpu:.1f} | {bad} | {per} |")
print()
cm = med(cold)
print(f"cold start: first request to a stopped site {cm*1000:.1f} ms (median of {len(cold)}); "
      f"backend alone exec→accept {own*1000:.1f} ms; siteplex overhead {max(0,(cm-own))*1000:.1f} ms")
print(f"siteplex RSS: idle {rss_idle/1024:.1f} MiB, after load {rss_loaded/1024:.1f} MiB")
print()
sp = [med([r[i] for r in res["siteplex"]]) for i in range(3)]
cd = [med([r[i] for r in res["caddy"]]) for i in range(3)]
ok = lambda b: "met" if b else "NOT MET"
print(f"target: siteplex >= 1.3x Caddy's req/s: {sp[0]/cd[0]:.2f}x ({ok(sp[0] >= 1.3*cd[0])})")
print(f"target: siteplex p99 <= Caddy's: {sp[2]:.2f} vs {cd[2]:.2f} ms ({ok(sp[2] <= cd[2])})")
print(f"target: idle RSS < 20 MiB: {rss_idle/1024:.1f} MiB ({ok(rss_idle < 20*1024)})")
EOF
