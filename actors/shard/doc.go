// Package shard holds the replicated state of one shard — its contacts and
// agents — and the only code that changes it: State.Apply, which applies one
// routing command.
//
// What must hold:
//   - Apply is deterministic. It reads time only from Command.at and never
//     does I/O, so every replica that applies the same commands in the same
//     order holds the same state, and a new owner can rebuild everything
//     (actors, timers) from it.
//   - A command that is not legal in the current state changes nothing and
//     returns an *Error whose Code says why.
//   - An agent never holds more slots on a channel than its capacity, and a
//     channel blocked by the agent's active work takes no new slot.
//   - A contact is held for at most one agent at a time (one assignment).
//
// Records returned to callers are copies; the state keeps its own.
package shard
