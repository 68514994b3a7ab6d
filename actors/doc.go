// Package actors runs tsunagu's routing: a queue actor per queue, an agent
// actor per agent and a contact actor per contact, on protoactor, hosted by
// an Engine for the shards this node owns.
//
// Each actor is a thin shell around a pure state machine (queueMachine,
// agentMachine, contactMachine): an input plus the time in, effects out.
// The shell turns messages into inputs and carries out the effects:
// proposing commands to the shard's Log, sending to other actors, talking
// to NATS through the Bus, arming timers.
//
// The rules the machines keep:
//   - Nothing is promised before its command is committed: a carrier's
//     arrival reply, a reservation, an offer, a routing instruction all
//     follow the commit of the command they rest on.
//   - One proposer per record: a contact's commands come only from its
//     contact actor, an agent's only from its agent actor; while a proposal
//     is in flight the actor stashes further input.
//   - Matching is a conversation: the queue picks (contact, agent), the
//     contact's shard holds the contact (ContactLock), the agent's shard
//     grants or declines (AgentReserve) and offers. A freed agent first asks
//     all its queues for their best contact (a round) and claims the best.
//   - Everything that crosses shards is retried until answered and is
//     idempotent on offer id, and timers are re-armed from committed
//     timestamps, so a new owner rebuilds every actor from the shard state.
package actors
