package gateway

import (
	"fmt"
)

// Subjects of contract version 1. Everything a carrier sends or receives is
// under tsunagu.v1.carriers.<carrier>, so NATS permissions can confine a
// carrier to its own contacts.
const (
	SubjectArriveAll     = "tsunagu.v1.carriers.*.arrive"
	SubjectMediaAll      = "tsunagu.v1.carriers.*.media.*.*"
	SubjectAgentCommands = "tsunagu.v1.agents.*.commands"
	SubjectQueueStatus   = "tsunagu.v1.queues.*.status"
	SubjectEventsAll     = "tsunagu.v1.events.>"
)

// ArriveSubject is where carrier hands over contacts.
func ArriveSubject(carrier string) string { return "tsunagu.v1.carriers." + carrier + ".arrive" }

// MediaSubject is where carrier publishes media events for a contact.
func MediaSubject(carrier, queue, contactID string) string {
	return "tsunagu.v1.carriers." + carrier + ".media." + queue + "." + contactID
}

// AgentCommandSubject is where an agent's desktop sends commands.
func AgentCommandSubject(agentID string) string { return "tsunagu.v1.agents." + agentID + ".commands" }

// AgentNoticeSubject is where an agent's desktop receives offers and state.
func AgentNoticeSubject(agentID string) string { return "tsunagu.v1.agents." + agentID + ".notices" }

// InstructionSubject is where a carrier receives routing instructions.
func InstructionSubject(carrier string) string {
	return "tsunagu.v1.carriers." + carrier + ".instructions"
}

// EventSubject carries a shard's committed events.
func EventSubject(shard uint32) string { return fmt.Sprintf("tsunagu.v1.events.%d", shard) }

// QueueStatusSubject answers a queue's figures.
func QueueStatusSubject(queue string) string { return "tsunagu.v1.queues." + queue + ".status" }

// Headers.
const (
	HeaderContentType = "Content-Type"
	// HeaderError carries the error code of a reply that failed, so a
	// client can tell without decoding.
	HeaderError = "Tsunagu-Error"
	ContentJSON = "application/json"
	ContentPB   = "application/protobuf"
)
