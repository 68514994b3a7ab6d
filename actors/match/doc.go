// Package match holds one queue's matching indexes — who is waiting, which
// agents are free — and answers the two routing questions in time that does
// not grow with the number of waiting contacts:
//
//   - a contact is waiting: which free agent should get it (BestAgent)?
//   - an agent is free: which waiting contact should it get (BestContact)?
//
// Waiting contacts sit in lines keyed by (channel, base priority,
// requirement class), each ordered by original arrival, so the best contact
// overall is the best of the line heads: ageing raises priority by waiting
// time, which never reorders a line. Free agents sit in pools keyed by
// (channel, first eligible widening step, class mask), each a heap ordered
// by the queue's strategy, so the best agent is the best of the eligible
// pool tops. Requirement classes are the distinct extra requirements of
// contacts (language, contact-specific skills, and the contact's site while
// its queue's site window lasts); an agent's mask says which classes it
// satisfies.
//
// The indexes are soft state: they are rebuilt from the shard's replicated
// contacts and from agents' status messages, and nothing in them is a
// promise. Queue is not safe for concurrent use; its owner (the queue
// actor) serialises access.
package match
