// Package cluster commits routing commands and decides who owns which
// shard.
//
// MemoryLog is the single-node log: it commits a command by applying it, in
// proposal order, on its own goroutine, and only then calls the proposer
// back — the same contract a Raft-replicated log keeps (propose, commit,
// apply, then effects), so the routing engine cannot tell them apart.
// Commands waiting while a batch applies are applied together as the next
// batch (group commit).
//
// The package does not import the routing engine: the engine hands it the
// function that applies a batch of commands.
package cluster
