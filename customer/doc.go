// Package customer owns what tsunagu knows about a customer across channels:
// profile fields set by the CRM side (tier, language), the agent who last
// served them and their most recent interactions. Routing reads a Context when
// a contact arrives (priority, preferred agent, language) and records an
// Interaction when it ends.
//
// Customer context is a personalisation, never a precondition: when the store
// is slow or down, routing goes on without it. Every Store method therefore
// fails fast and reports connection and timeout failures as ErrUnavailable, so
// callers can count fallbacks (errors.Is) instead of waiting or retrying in
// the arrival path.
//
// # Stores
//
// Memory is the in-process default for a single node. It is bounded by
// MemoryConfig.MaxCustomers with least-recently-used eviction (Lookup, Record
// and Put all count as use) and keeps no expiry. Its contents die with the
// process.
//
// Redis is the shared store for clusters. Lookup is one round trip (a pipeline
// of HGETALL and LRANGE) and Record is one round trip (a MULTI/EXEC
// transaction), so a node never observes half of a Record. Its client is
// set up not to provoke go-redis's process-wide logger against plain Redis;
// what go-redis still logs (failed dials while Redis is down) the program
// can route into slog with GoRedisLogger.
//
// # Invariants, both stores
//
//   - Keys are 1..MaxKeyLen bytes; anything else is ErrInvalidKey and touches
//     nothing.
//   - Recent is newest first and never longer than MaxRecent. Recency is the
//     order in which Record is called, not the interactions' timestamps:
//     records arrive when interactions end, so the two agree in practice, and
//     Redis cannot reorder without a script.
//   - Recording an interaction identical to one already in Recent moves it to
//     the front instead of adding a copy, so a Record retried after an
//     ambiguous failure (timeout with the write applied) is harmless.
//   - LastAgent moves only with an interaction that names an agent
//     (abandoned contacts and bot-only sessions leave it alone); LastAgentAt
//     is that interaction's EndedAt, else its StartedAt, else the time of the
//     Record call.
//   - Times come back in UTC without a monotonic reading.
//
// # Redis key schema
//
// For customer key K and prefix P (RedisConfig.KeyPrefix, default
// "tsunagu:cust:"):
//
//	P{K}          hash  tier      profile tier, set by Put
//	                    lang      profile language, set by Put
//	                    agent     LastAgent, set by Record
//	                    agent_at  LastAgentAt, Unix nanoseconds in decimal
//	P{K}:recent   list  one compact JSON object per interaction, newest at
//	                    the head, trimmed to MaxRecent:
//	                    {"c":ContactID,"ch":Channel,"q":Queue,"a":AgentID,
//	                     "s":StartedAt,"e":EndedAt,"o":Outcome}
//	                    with times as Unix nanoseconds; empty fields and
//	                    zero times are omitted.
//
// The braces are a Redis Cluster hash tag: both keys of a customer share a
// slot, so the Record transaction stays legal if the deployment moves to
// Redis Cluster. Every Record and Put resets the TTL of both keys
// (RedisConfig.TTL, sliding), so a customer unheard of for that long is
// forgotten. A customer exists (Lookup's found) while either key exists.
// Unreadable list entries are skipped and logged, never fatal to a Lookup.
package customer
