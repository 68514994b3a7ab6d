package shard

import (
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Contact is one contact's replicated record. Arrival is shared between
// copies and never modified after the contact is accepted.
type Contact struct {
	Arrival    *pb.ContactArrive
	Seq        uint64
	State      pb.ContactState
	StateSince int64
	Attempts   uint32
	// Current assignment while reserved, connected or in wrap-up.
	AgentID     string
	OfferID     string
	LockedAt    int64
	ConnectedAt int64
	Answered    bool
	OnHold      bool
	EndedAt     int64
	HandledBy   string
}

// ID returns the carrier's contact id.
func (c *Contact) ID() string { return c.Arrival.GetContactId() }

// Queue returns the queue the contact arrived in.
func (c *Contact) Queue() string { return c.Arrival.GetQueue() }

// Terminal reports whether the contact has ended for good.
func (c *Contact) Terminal() bool { return Terminal(c.State) }

// Terminal reports whether s is a terminal contact state.
func Terminal(s pb.ContactState) bool {
	switch s {
	case pb.ContactState_CONTACT_STATE_DONE, pb.ContactState_CONTACT_STATE_ABANDONED, pb.ContactState_CONTACT_STATE_REJECTED:
		return true
	}
	return false
}

// Slot is one unit of an agent's capacity in use.
type Slot struct {
	OfferID      string
	ContactID    string
	Queue        string
	Channel      pb.Channel
	ContactShard uint32
	State        pb.SlotState
	Since        int64
	// Offer deadline while offered; end of the wrap-up box in wrap-up.
	Deadline    int64
	WrapUpFixed bool
	CustomerKey string
	Attributes  map[string]string
	Priority    int32
	ArrivedAt   int64
}

// Counters are an agent's running totals, for fairness and reports.
type Counters struct {
	Offered, Accepted, Rejected, Missed, Handled uint64
}

// Agent is one agent's replicated record. Profile is shared between copies
// and never modified; Slots and Recent are replaced, never modified in
// place, so copies stay valid — and copies must treat them as read-only.
type Agent struct {
	Profile       *pb.AgentProfile
	Presence      pb.AgentPresence
	Reason        string
	PresenceSince int64
	IdleSince     int64
	Slots         []Slot
	Version       uint64
	Counters      Counters
	// Recent are the last offers that left the agent, newest last.
	Recent []Finished
}

// Finished is an offer that left the agent, and how.
type Finished struct {
	OfferID   string
	ContactID string
	How       pb.FinishedHow
}

// MaxRecent bounds Agent.Recent.
const MaxRecent = 16

// Finished returns how offerID left the agent, if it is among the recent.
func (a *Agent) Finished(offerID string) (Finished, bool) {
	for i := len(a.Recent) - 1; i >= 0; i-- {
		if a.Recent[i].OfferID == offerID {
			return a.Recent[i], true
		}
	}
	return Finished{}, false
}

// ID returns the agent's id.
func (a *Agent) ID() string { return a.Profile.GetId() }

// LoggedIn reports whether the agent is not offline.
func (a *Agent) LoggedIn() bool {
	return a.Presence == pb.AgentPresence_AGENT_PRESENCE_AVAILABLE || a.Presence == pb.AgentPresence_AGENT_PRESENCE_NOT_READY
}

// Slot returns the slot holding offerID.
func (a *Agent) Slot(offerID string) (Slot, bool) {
	for _, s := range a.Slots {
		if s.OfferID == offerID {
			return s, true
		}
	}
	return Slot{}, false
}

// State is the one-word state shown to supervisors.
func (a *Agent) State() pb.AgentState {
	if !a.LoggedIn() {
		return pb.AgentState_AGENT_STATE_OFFLINE
	}
	var busy, wrap bool
	for _, s := range a.Slots {
		switch s.State {
		case pb.SlotState_SLOT_STATE_OFFERED:
			return pb.AgentState_AGENT_STATE_RESERVED
		case pb.SlotState_SLOT_STATE_BUSY:
			busy = true
		case pb.SlotState_SLOT_STATE_WRAP_UP:
			wrap = true
		}
	}
	switch {
	case busy:
		return pb.AgentState_AGENT_STATE_BUSY
	case wrap:
		return pb.AgentState_AGENT_STATE_WRAP_UP
	case a.Presence == pb.AgentPresence_AGENT_PRESENCE_AVAILABLE:
		return pb.AgentState_AGENT_STATE_AVAILABLE
	}
	return pb.AgentState_AGENT_STATE_NOT_READY
}

// Channels lists every channel, in enum order, for iteration.
var Channels = []pb.Channel{
	pb.Channel_CHANNEL_VOICE,
	pb.Channel_CHANNEL_CHAT,
	pb.Channel_CHANNEL_EMAIL,
	pb.Channel_CHANNEL_SMS,
	pb.Channel_CHANNEL_CALLBACK,
}

// NumChannels bounds arrays indexed by pb.Channel.
const NumChannels = 6

// ValidChannel reports whether ch is a real channel. Protobuf enums carry any
// int32, so every index by channel goes through this first.
func ValidChannel(ch pb.Channel) bool { return ch > 0 && int(ch) < NumChannels }

// DefaultCapacity is the capacity of a profile that lists none.
var DefaultCapacity = [NumChannels]uint32{
	pb.Channel_CHANNEL_VOICE:    1,
	pb.Channel_CHANNEL_CHAT:     3,
	pb.Channel_CHANNEL_EMAIL:    5,
	pb.Channel_CHANNEL_SMS:      3,
	pb.Channel_CHANNEL_CALLBACK: 1,
}

// Capacity returns the profile's slots per channel.
func Capacity(p *pb.AgentProfile) [NumChannels]uint32 {
	if len(p.GetCapacity()) == 0 {
		return DefaultCapacity
	}
	var c [NumChannels]uint32
	for _, cc := range p.GetCapacity() {
		if ValidChannel(cc.GetChannel()) {
			c[cc.GetChannel()] += cc.GetSlots()
		}
	}
	return c
}

// Blocks returns, per channel, the set of channels it blocks while active,
// as a bit mask indexed by pb.Channel.
func Blocks(p *pb.AgentProfile) [NumChannels]uint8 {
	if p.GetBlocking() == nil {
		return defaultBlocks
	}
	var b [NumChannels]uint8
	for _, cb := range p.GetBlocking().GetBlocks() {
		if !ValidChannel(cb.GetChannel()) {
			continue
		}
		for _, x := range cb.GetBlocks() {
			if ValidChannel(x) {
				b[cb.GetChannel()] |= 1 << x
			}
		}
	}
	return b
}

var defaultBlocks = func() [NumChannels]uint8 {
	var b [NumChannels]uint8
	all := uint8(0)
	for _, ch := range Channels {
		all |= 1 << ch
	}
	exclusive := uint8(1<<pb.Channel_CHANNEL_VOICE | 1<<pb.Channel_CHANNEL_CALLBACK)
	for _, ch := range Channels {
		if exclusive&(1<<ch) != 0 {
			b[ch] = all &^ (1 << ch)
		} else {
			b[ch] = exclusive
		}
	}
	return b
}()

// Free returns how many new slots the agent can take on each channel now:
// zero everywhere unless available; capacity minus slots in use; zero on a
// channel blocked by another channel's offered or busy work. Wrap-up holds
// its slot but blocks nothing.
func (a *Agent) Free() [NumChannels]uint32 {
	var free [NumChannels]uint32
	if a.Presence != pb.AgentPresence_AGENT_PRESENCE_AVAILABLE {
		return free
	}
	capacity := Capacity(a.Profile)
	blocks := Blocks(a.Profile)
	var used [NumChannels]uint32
	var blocked uint8
	for _, s := range a.Slots {
		ch := s.Channel
		if !ValidChannel(ch) {
			continue
		}
		used[ch]++
		if s.State != pb.SlotState_SLOT_STATE_WRAP_UP {
			blocked |= blocks[ch]
		}
	}
	for _, ch := range Channels {
		if blocked&(1<<ch) != 0 || used[ch] >= capacity[ch] {
			continue
		}
		free[ch] = capacity[ch] - used[ch]
	}
	return free
}

// InUse returns slots in use per channel.
func (a *Agent) InUse() [NumChannels]uint32 {
	var used [NumChannels]uint32
	for _, s := range a.Slots {
		if ValidChannel(s.Channel) {
			used[s.Channel]++
		}
	}
	return used
}

// Occupancy is the share of the agent's total capacity in use, per mille.
func (a *Agent) Occupancy() uint32 {
	capacity := Capacity(a.Profile)
	var total uint32
	for _, c := range capacity {
		total += c
	}
	if total == 0 {
		return 1000
	}
	return uint32(len(a.Slots)) * 1000 / total
}
