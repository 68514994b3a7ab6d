package check

import (
	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Instants are the committed instants an offer's routing latency is
// measured from, unix ns.
type Instants struct {
	// Queued is the commit of the contact's last QUEUED state before the
	// offer (arrival, or back in line).
	Queued int64
	// Free is the commit at which the agent last became free on the
	// offer's channel before the offer (logged in or ready, or the work
	// that filled the channel released). Zero if the stream never showed
	// it free there: the reservation then contradicts the stream, which
	// Capacity reports.
	Free int64
	// Eligible is when the agent became eligible for the contact: its
	// arrival (with wait credit) plus the wait at which the queue's
	// widening first admits the agent, or later, the end of the time the
	// contact keeps away from this agent after it rejected or missed it.
	Eligible int64
}

// OfferInstants replays the stream and returns, per offer id, the instants
// at which its contact was queued and its agent free, as committed. With
// the node on the harness's clock these are the exact moments "a contact
// and an eligible free agent both exist".
func OfferInstants(t *Trace, m Model) map[string]Instants {
	out := map[string]Instants{}
	queued := map[string]int64{}
	agents := map[string]*agentState{}
	tr := newTracker(m)
	for _, e := range commitOrder(t.Events) {
		switch {
		case e.Contact != nil:
			c := e.Contact
			w, _ := tr.apply(e, false)
			switch c.State {
			case pb.ContactState_CONTACT_STATE_QUEUED:
				switch c.Reason {
				case "", "declined", "rejected", "missed": // arrived, or back in line; not a media event
					queued[c.ContactID] = e.At
				}
			case pb.ContactState_CONTACT_STATE_RESERVED:
				in := out[c.OfferID]
				in.Queued = queued[c.ContactID]
				in.Eligible = c.ArrivedAt
				if p, ok := m.Routing.Agents[c.AgentID]; ok && w.queueConf != nil {
					if k := m.Routing.MinStep(w.queueConf, p); k > 0 {
						in.Eligible += int64(w.queueConf.Steps[k].After)
					}
				}
				if until := w.avoid[c.AgentID]; until > in.Eligible {
					in.Eligible = until
				}
				out[c.OfferID] = in
			}
		case e.Agent != nil:
			ae := e.Agent
			a := agents[ae.AgentID]
			if a == nil {
				p, ok := m.Routing.Agents[ae.AgentID]
				if !ok {
					continue
				}
				a = &agentState{id: ae.AgentID, slots: map[string]slot{}, capacity: shard.Capacity(p), blocks: shard.Blocks(p)}
				agents[ae.AgentID] = a
			}
			if _, held := a.slots[ae.OfferID]; ae.OfferID != "" && !held && ae.SlotState == pb.SlotState_SLOT_STATE_OFFERED {
				in := out[ae.OfferID]
				if ch := ae.Channel; ch > 0 && int(ch) < numChannels && a.free[ch] {
					in.Free = a.since[ch]
				}
				out[ae.OfferID] = in
			}
			a.presence = ae.Presence
			if ae.OfferID != "" {
				if ae.SlotState == pb.SlotState_SLOT_STATE_UNSPECIFIED {
					delete(a.slots, ae.OfferID)
				} else {
					a.slots[ae.OfferID] = slot{ch: ae.Channel, state: ae.SlotState}
				}
			}
			a.update(e.At)
		}
	}
	return out
}
