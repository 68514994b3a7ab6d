#!/usr/bin/env bash
# Starts a 3-node tsunagu cluster on this machine: node i listens on
# 127.0.0.i (NATS 4222, NATS routes 6222, HTTP 8080, Raft 7000, actors 7100)
# and keeps its Raft log under $DATA/n<i>. Ctrl-C stops all three, each
# handing its shards over first. See docs/operations.md.
#
#   scripts/cluster.sh                # start (or restart from disk)
#   DATA=/tmp/tsunagu scripts/cluster.sh
#   CONFIG=my.json scripts/cluster.sh # queues and agents from a config file
#   SHARDS=6 scripts/cluster.sh       # shard count of a new cluster (default 16)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-./data}
BIN=${BIN:-$(mktemp -d)/tsunagu-node}
go build -o "$BIN" ./node
boot="n1=127.0.0.1:7000,n2=127.0.0.2:7000,n3=127.0.0.3:7000"
pids=()
stop() {
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait
}
trap stop INT TERM EXIT
for i in 1 2 3; do
	routes=""
	for j in 1 2 3; do
		[ "$i" = "$j" ] || routes="${routes:+$routes,}nats-route://127.0.0.$j:6222"
	done
	mkdir -p "$DATA/n$i"
	args=(-node-id "n$i" -shards "${SHARDS:-16}" -site "site-$(( (i - 1) % 2 + 1 ))"
		-nats-listen "127.0.0.$i:4222" -nats-cluster-listen "127.0.0.$i:6222" -nats-routes "$routes"
		-http-listen "127.0.0.$i:8080" -raft-listen "127.0.0.$i:7000" -remote-listen "127.0.0.$i:7100"
		-data-dir "$DATA/n$i" -bootstrap "$boot")
	[ -n "${CONFIG:-}" ] && args+=(-config "$CONFIG")
	"$BIN" "${args[@]}" 2> >(sed "s/^/n$i | /" >&2) &
	pids+=($!)
done
for i in 1 2 3; do
	until curl -sf "http://127.0.0.$i:8080/healthz" >/dev/null; do sleep 0.2; done
done
echo "3 nodes routing. Who owns what: curl -s http://127.0.0.1:8080/cluster/status"
echo "NATS: nats://127.0.0.1:4222 (or .2, .3). Ctrl-C stops the cluster."
wait
