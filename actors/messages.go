package actors

import (
	"github.com/tsunagu/tsunagu/actors/match"
	"github.com/tsunagu/tsunagu/actors/routing"
	"github.com/tsunagu/tsunagu/actors/shard"
	"github.com/tsunagu/tsunagu/customer"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Messages between actors of one node. Anything that may cross nodes is a
// *pb.ShardMessage instead.

// arrival is a carrier's arrival request, to the queue actor.
type arrival struct {
	req   *pb.ContactArrival
	reply func(*pb.ArrivalReply)
}

// startContact creates a contact: the first message of a new contact actor
// (or of an existing one, for a retry that raced the first request).
type startContact struct {
	req   *pb.ContactArrival
	reply func(*pb.ArrivalReply)
	// arrive is the arrival to propose, when the queue built it (no
	// customer context to read first), with its extra requirements and the
	// hold the queue answered for it (agentID empty: none).
	arrive *pb.Command
	extras routing.Requirements
	hold   lockContact
}

// holdAsk: a contact about to propose its arrival asks its queue whether
// to be held for a free agent in the same commit.
type holdAsk struct {
	w      match.Waiting
	extras routing.Requirements
}

// holdAnswer is the queue's answer to holdAsk: the hold to commit with the
// arrival, or none (hold.agentID empty): wait in line.
type holdAnswer struct {
	hold lockContact
}

// enqueued: the contact's arrival is committed; the queue lines it up
// (unless it was held for an agent as it arrived) and answers the carrier.
type enqueued struct {
	rec     shard.Contact
	extras  routing.Requirements
	replies []func(*pb.ArrivalReply)
	held    bool
}

// returning: a held contact is about to go back in line (its unlock is
// being committed).
type returning struct {
	contactID string
}

// lineSettled: a contact the queue answered a hold for, or heard is
// returning, will not be lined by that: its arrival was not committed by
// this request, or its unlock was refused. The hold it was given, if any,
// is to be forgotten.
type lineSettled struct {
	contactID string
	hold      lockContact
	// keepUnheld: only the hold is given back; another request for the
	// contact is still on its way into line.
	keepUnheld bool
}

// dequeued: a waiting contact ended (abandoned).
type dequeued struct {
	contactID string
}

// requeued: a held contact is back in line at its original place.
type requeued struct {
	rec    shard.Contact
	extras routing.Requirements
	avoid  []match.Avoid
}

// lockContact asks a contact actor to hold its contact for an agent.
type lockContact struct {
	agentID    string
	agentShard uint32
	round      uint64
	// seq is the queue's number for this hold (AgentStatus.seen_seq).
	seq uint64
}

// lockFailed: the contact could not be held. requeue says whether it is
// still waiting (so it goes back in line).
type lockFailed struct {
	contactID string
	agentID   string
	seq       uint64
	requeue   bool
	rec       shard.Contact
	extras    routing.Requirements
	avoid     []match.Avoid
}

// media is a carrier media event for a contact.
type media struct {
	ev    *pb.MediaEvent
	reply func(*pb.MediaEventReply)
}

// agentCommand is a desktop command for an agent.
type agentCommand struct {
	cmd   *pb.AgentCommand
	reply func(*pb.AgentCommandReply)
}

// queueStatus asks a queue actor for its figures.
type queueStatus struct {
	reply func(*pb.QueueStatusReply)
}

// instructionAcked is the carrier's answer to a routing instruction.
type instructionAcked struct {
	id  string
	ack *pb.InstructionAck
	err error
}

// customerLoaded is the customer context read at arrival.
type customerLoaded struct {
	ctx   customer.Context
	found bool
	err   error
}

// committed is a proposal's outcome, delivered to its proposer.
type committed struct {
	tag any
	res *shard.Result
}

// timerFired is a timer of the actor's own.
type timerFired struct {
	key string
	gen uint64
}

// rebuild activates an actor from its committed record (after failover or
// on demand).
type rebuild struct{}

// announce makes an agent tell all its queues its status again: a queue
// moved to a new owner, which starts knowing no agent.
type announce struct{}

// passivate stops a contact actor after everything sent to it before its
// removal from the directory has been handled.
type passivate struct{}
