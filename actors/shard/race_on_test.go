//go:build race

package shard_test

// raceEnabled: the race detector slows the single-goroutine property runs
// several times over without anything to find in them, so they do fewer
// steps under -race.
const raceEnabled = true
