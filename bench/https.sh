#!/usr/bin/env bash
# bench/https.sh — siteplex over TLS against Caddy over TLS.
#
# One run on loopback, interleaved rounds, medians: wrk over https
# (HTTP/1.1, keep-alive: wrk offers no ALPN, so both servers speak
# HTTP/1.1) against
#   siteplex `siteplex serve --https` in front of the demo site's /plain
#   caddy    Caddy (Debian caddy) with `reverse_proxy` to that same backend
#            process, serving a certificate issued by the same local CA for
#            the same name (ECDSA P-256 both), no admin API, no redirects
# with the CPU per request of each proxy and of the backend, and the plain
# backend alone for scale (direct, over HTTP). It ends with the targets:
# siteplex's req/s at least Caddy's, its p99 no higher than Caddy's.
#
# The CA lives in a temp CAROOT (SITEPLEX_CAROOT); no trust store is
# touched (wrk does not verify certificates). wrk connects to
# bench.localhost, so that the TLS server name is a site's name as a
# browser would send it: when this machine's resolver does not know the
# name, wrk runs in a private mount namespace (unshare -m, root only) whose
# /etc/hosts is a temp copy that maps it to 127.0.0.1.
#
# Usage: bench/https.sh            (builds siteplex into a temp folder)
#        SITEPLEX=/path/to/siteplex DURATION=5s CONNS=32 ROUNDS=3 bench/https.sh
# Needs: wrk, caddy, curl, python3 (and unshare, as root, when
# bench.localhost does not resolve).
set -euo pipefail

DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2s}
NAME=bench.localhost

here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/bench/lib.sh"
need_tools "wrk caddy curl python3" "wrk caddy curl python3"
bench_work siteplex-bench-https
SITEPLEX=$(siteplex_bin "$here")
export SITEPLEX_CAROOT=$work/ca

# How wrk reaches bench.localhost.
if getent hosts "$NAME" | grep -q '^127\.0\.0\.1'; then
	wrk_cmd() { wrk "$@"; }
elif [ "$(id -u)" = 0 ] && command -v unshare >/dev/null; then
	{ cat /etc/hosts; echo "127.0.0.1 $NAME"; } >"$work/hosts"
	wrk_cmd() { unshare -m sh -c 'mount --bind "$0" /etc/hosts && exec wrk "$@"' "$work/hosts" "$@"; }
else
	echo "bench/https.sh: $NAME does not resolve here; add '127.0.0.1 $NAME' to /etc/hosts, or run as root (a private mount namespace maps it)" >&2
	exit 1
fi

"$SITEPLEX" trust --store none >/dev/null

bench_project "$work/proj" "$SITEPLEX" "$NAME"

serve_start "$work/serve.log" 'listening on https://' --project "$work/proj" --listen 127.0.0.1:0 --https 127.0.0.1:0 --no-watch --idle-timeout 0
sp_plain=$(sed -n 's/^siteplex: listening on \([0-9].*\)/\1/p' "$work/serve.log" | head -1)
sp_tls=$(sed -n 's/^siteplex: listening on https:\/\///p' "$work/serve.log" | head -1)
sp_port=${sp_tls##*:}

# The first request starts the backend and issues the name's leaf.
curl -sf -o /dev/null --cacert "$SITEPLEX_CAROOT/rootCA.pem" --resolve "$NAME:$sp_port:127.0.0.1" "https://$NAME:$sp_port/plain"
read -r be_port be_pid < <(bench_backend "$sp_plain")
be_addr=127.0.0.1:$be_port
leaf=$SITEPLEX_CAROOT/leaves/$NAME.pem

# Caddy: the same certificate (the leaf file holds the certificate and its
# key), no admin API, no ACME, no HTTP-to-HTTPS redirect listener.
cd_port=$(free_port)
cd_ok() { curl -sf -o /dev/null --cacert "$SITEPLEX_CAROOT/rootCA.pem" --resolve "$NAME:$cd_port:127.0.0.1" "https://$NAME:$cd_port/plain"; }
caddy_start cd_ok <<EOF
{
	admin off
	auto_https disable_redirects
}
https://$NAME:$cd_port {
	bind 127.0.0.1
	tls $leaf $leaf
	reverse_proxy $be_addr
}
EOF

# run NAME URL PIDS: one wrk run, a row in $work/results.
run() { wrk_run "$1" "$3" wrk_cmd -t1 -c"$CONNS" -d"$DURATION" --latency "$2"; }

direct_url=http://$NAME:$be_port/plain
sp_url=https://$NAME:$sp_port/plain
cd_url=https://$NAME:$cd_port/plain
for url in "$direct_url" "$sp_url" "$cd_url"; do
	wrk_cmd -t1 -c"$CONNS" -d"$WARMUP" "$url" >/dev/null
done
for _ in $(seq "$ROUNDS"); do
	run direct "$direct_url" "$be_pid"
	run siteplex "$sp_url" "$sp_pid"
	run caddy "$cd_url" "$cd_pid"
done

python3 - "$work/results" "$(caddy version | cut -d' ' -f1)" <<'EOF'
import os, sys, statistics
from collections import defaultdict
res = defaultdict(list)
for line in open(sys.argv[1]):
    name, rps, p50, p99, cpu, bad, bcpu = line.split()
    res[name].append((float(rps), float(p50), float(p99), float(cpu), int(bad), float(bcpu)))
med = statistics.median
direct = med([r[0] for r in res["direct"]])
print(f"wrk -t1 -c{os.environ.get('CONNS','32')} -d{os.environ.get('DURATION','5s')} over https (HTTP/1.1, keep-alive), "
      f"{len(res['direct'])} interleaved rounds, medians; backend: siteplex demo-site /plain; caddy {sys.argv[2]}")
print()
print("| target | req/s | of direct | p50 ms | p99 ms | proxy CPU µs/req | backend CPU µs/req | non-2xx | req/s per round | p99 ms per round |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for name, label in (("direct", "direct (plain HTTP)"), ("siteplex", "siteplex (TLS)"), ("caddy", "caddy (TLS)")):
    rs = res[name]
    rps, p50, p99, cpu = (med([r[i] for r in rs]) for i in range(4))
    bad = sum(r[4] for r in rs)
    bcpu = med([r[5] for r in rs])
    cpus = "–" if cpu < 0 else f"{cpu:.1f}"
    per = " ".join(f"{r[0]:,.0f}" for r in rs)
    per99 = " ".join(f"{r[2]:.2f}" for r in rs)
    print(f"| {label} | {rps:,.0f} | {100*rps/direct:.0f} % | {p50:.2f} | {p99:.2f} | {cpus} | {bcpu:.1f} | {bad} | {per} | {per99} |")
print()
sp = [med([r[i] for r in res["siteplex"]]) for i in range(3)]
cd = [med([r[i] for r in res["caddy"]]) for i in range(3)]
ok = lambda b: "met" if b else "NOT MET"
print(f"target: siteplex req/s >= Caddy's over TLS: {sp[0]/cd[0]:.2f}x ({ok(sp[0] >= cd[0])})")
print(f"target: siteplex p99 <= Caddy's over TLS: {sp[2]:.2f} vs {cd[2]:.2f} ms ({ok(sp[2] <= cd[2])})")
print(f"load average at the end: {open('/proc/loadavg').read().split()[0]} (the machine's cores: {os.cpu_count()})")
EOF
