package gateway

import (
	"fmt"
)

// Subjects of contract version 1.
const (
	SubjectArrive        = "tsunagu.v1.contacts.arrive"
	SubjectMediaAll      = "tsunagu.v1.media.*.*"
	SubjectAgentCommands = "tsunagu.v1.agents.*.commands"
	SubjectQueueStatus   = "tsunagu.v1.queues.*.status"
	SubjectEventsAll     = "tsunagu.v1.events.>"
)

// MediaSubject is where a carrier publishes media events for a contact.
func MediaSubject(queue, contactID string) string {
	return "tsunagu.v1.media." + queue + "." + contactID
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
