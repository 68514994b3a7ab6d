// Package gateway is the node's side of the NATS contract (docs/nats-contract.md):
// it subscribes to carrier and desktop subjects, decodes and validates what
// arrives, hands it to the routing engine, and publishes the engine's
// notices, routing instructions and events.
//
// Every request gets exactly one reply. Anything malformed, oversized, of
// an unknown schema version or out of range is answered with an error that
// has a stable code and names what was wrong, and never reaches the engine.
// Messages are protobuf unless the Content-Type header says
// application/json; replies use the request's encoding.
package gateway
