#!/usr/bin/env bash
# Runs every test: unit, scenario and end-to-end suites (real NATS servers
# embedded on random ports, a real redis-server started by the tests), and
# the cluster fault tests with real node processes, all with the race
# detector. Needs Go and redis-server on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1 && [ -z "${TSUNAGU_REDIS_SERVER:-}" ]; then
	echo "test.sh: redis-server not found; install it (Debian: apt-get install -y redis-server)" >&2
	exit 1
fi

# chaos/ runs three node processes and kills, pauses and restarts them; it
# runs on its own afterwards, so their Raft and NATS timing does not compete
# for the CPU with the race-instrumented suites of the other packages.
go test -race -count=1 -timeout 30m "$@" $(go list ./... | grep -v '/chaos$')
go test -race -count=1 -timeout 15m "$@" ./chaos/
