package actors

import (
	"fmt"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// The entry points below are called by the NATS gateway (any goroutine).
// Each answers exactly once through its reply function, possibly before
// returning; domain errors (unknown queue, agent or contact; shard not
// owned) are answered here and change nothing.

func unknownQueue(name string) *pb.Error {
	return &pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_QUEUE, Message: fmt.Sprintf("unknown queue %q", name)}
}

func notOwned(shard uint32) *pb.Error {
	return &pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNAVAILABLE, Message: fmt.Sprintf("shard %d is not served by this node right now; retry", shard)}
}

// Arrive takes a carrier's arrival. The reply follows the commit.
func (e *Engine) Arrive(req *pb.ContactArrival, reply func(*pb.ArrivalReply)) {
	q, ok := e.env.cfg.Queue(req.GetQueue())
	if !ok {
		reply(&pb.ArrivalReply{ContactId: req.GetContactId(), Queue: req.GetQueue(), Error: unknownQueue(req.GetQueue())})
		return
	}
	id := e.env.queueShard(q.Name)
	h := e.host(id)
	if h == nil {
		reply(&pb.ArrivalReply{ContactId: req.GetContactId(), Queue: q.Name, Error: notOwned(id)})
		return
	}
	h.deliver(target{kind: queueKind, shard: id, id: q.Name}, arrival{req: req, reply: reply})
}

// Media takes carrier's media event for a contact of queue. Only the
// carrier that handed the contact over may signal it; to anyone else the
// contact does not exist.
func (e *Engine) Media(carrier, queue string, ev *pb.MediaEvent, reply func(*pb.MediaEventReply)) {
	fail := func(err *pb.Error) { reply(&pb.MediaEventReply{ContactId: ev.GetContactId(), Error: err}) }
	q, ok := e.env.cfg.Queue(queue)
	if !ok {
		fail(unknownQueue(queue))
		return
	}
	id := e.env.queueShard(q.Name)
	h := e.host(id)
	if h == nil {
		fail(notOwned(id))
		return
	}
	c, ok := h.state.Contact(ev.GetContactId())
	if !ok || c.Queue() != q.Name || c.Arrival.GetCarrier() != carrier {
		fail(&pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_CONTACT, Message: fmt.Sprintf("unknown contact %q in queue %q", ev.GetContactId(), q.Name)})
		return
	}
	h.deliver(target{kind: contactKind, shard: id, id: c.ID()}, media{ev: ev, reply: reply})
}

// AgentCommand takes a desktop command for agentID.
func (e *Engine) AgentCommand(agentID string, cmd *pb.AgentCommand, reply func(*pb.AgentCommandReply)) {
	if !routing.ValidAgentID(agentID) {
		reply(&pb.AgentCommandReply{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Message: fmt.Sprintf("agent id %q is not valid", agentID)}})
		return
	}
	if _, ok := e.env.cfg.Agents[agentID]; !ok {
		reply(&pb.AgentCommandReply{Error: &pb.Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_AGENT, Message: fmt.Sprintf("unknown agent %q", agentID)}})
		return
	}
	id := e.env.agentShard(agentID)
	h := e.host(id)
	if h == nil {
		reply(&pb.AgentCommandReply{Error: notOwned(id)})
		return
	}
	h.deliver(target{kind: agentKind, shard: id, id: agentID}, agentCommand{cmd: cmd, reply: reply})
}

// QueueStatus answers with a queue's current figures.
func (e *Engine) QueueStatus(queue string, reply func(*pb.QueueStatusReply)) {
	q, ok := e.env.cfg.Queue(queue)
	if !ok {
		reply(&pb.QueueStatusReply{Queue: queue, Error: unknownQueue(queue)})
		return
	}
	id := e.env.queueShard(q.Name)
	h := e.host(id)
	if h == nil {
		reply(&pb.QueueStatusReply{Queue: q.Name, Error: notOwned(id)})
		return
	}
	h.deliver(target{kind: queueKind, shard: id, id: q.Name}, queueStatus{reply: reply})
}
