#!/usr/bin/env bash
# Counts instructions per routing decision (BenchmarkMatchDecision, 100k
# agents) at 1k, 100k and 1M waiting contacts with callgrind. Instruction
# counts are repeatable on a shared machine where timings are not. Each size
# runs twice (2,000 and 12,000 decisions) and the difference is divided by
# 10,000, so building the fixture cancels out. The garbage collector is off
# so its timing cannot move work between the two runs; asynchronous
# preemption is off because callgrind cannot follow its signals.
# Needs valgrind (Debian: apt-get install -y valgrind). Takes ~10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)/match.test
go test -c -o "$bin" ./actors/match/
count() {
	GOGC=off GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
		"$bin" -test.run='^$' -test.bench="BenchmarkMatchDecision/waiting=$1\$" -test.benchtime="$2x" 2>&1 |
		awk '/Collected/ {print $4}'
}
for w in 1000 100000 1000000; do
	a=$(count "$w" 2000)
	b=$(count "$w" 12000)
	echo "waiting=$w instructions/decision=$(( (b - a) / 10000 ))"
done
