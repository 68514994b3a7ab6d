package shard_test

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// The property tests drive one shard with a few thousand random commands
// over a handful of contacts and agents. Most follow the routing protocol in
// a random interleaving (lock, then reserve or decline; accept, then
// connect; hang-up, then the agent's contact-ended; ...) chosen from the
// current state; the rest are garbage: malformed, out of order, unknown ids,
// out-of-range enums. After every command the invariants of DESIGN.md
// ("What must always hold" 2 and 4) and doc.go are checked, and a twin fed
// the same commands and a replica restored from a snapshot must agree.

var (
	poolAgents = []string{"a0", "a1", "a2", "a3"}
	poolQueues = []string{"sales", "support"}
	// Offers invented by garbage commands; the protocol's own are "o<n>".
	garbageOffers = []string{"g0", "g1", "g2", "g3"}
	// Contacts named by garbage reservations live in another shard.
	otherShard = uint32(testShard + 1)
)

// contactWindow is how many contact ids are in play at once: arrivals pick
// among the newest ids and one not used yet, so fresh contacts keep coming.
const contactWindow = 8

// driver picks the next command from the current state.
type driver struct {
	rng    *rand.Rand
	s      *shard.State
	at     int64
	offers int
	// contacts is the number of contact ids used so far.
	contactIDs int
	// skewClock lets garbage carry any time at all (a broken or deposed
	// proposer's clock), not just the driver's.
	skewClock bool
	// reserved remembers offers for which a reservation was proposed, so a
	// held contact without a slot is unlocked rather than reserved again.
	reserved map[string]bool
}

func newDriver(seed uint64, s *shard.State, skewClock bool) *driver {
	return &driver{rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), s: s, at: t0, reserved: map[string]bool{}, skewClock: skewClock}
}

// contactsInPlay are the ids of the window, oldest first.
func (d *driver) contactsInPlay() []string {
	var ids []string
	for i := max(0, d.contactIDs-contactWindow); i < d.contactIDs; i++ {
		ids = append(ids, fmt.Sprintf("c%d", i))
	}
	return ids
}

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// contacts lists the shard's contacts that keep accepts, in seq order.
func (d *driver) contacts(keep func(shard.Contact) bool) []shard.Contact {
	var out []shard.Contact
	d.s.Contacts(func(c shard.Contact) {
		if keep(c) {
			out = append(out, c)
		}
	})
	slices.SortFunc(out, func(a, b shard.Contact) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// slotOf returns the slot agent holds for offer and contact of this shard.
func (d *driver) slotOf(agent, offer, contact string) (shard.Slot, bool) {
	a, ok := d.s.Agent(agent)
	if !ok {
		return shard.Slot{}, false
	}
	sl, ok := a.Slot(offer)
	if !ok || sl.ContactID != contact || sl.ContactShard != testShard {
		return shard.Slot{}, false
	}
	return sl, true
}

func held(st pb.ContactState) bool { return st == reserved || st == connected || st == inWrapUp }

var profiles = []func(id string) *pb.AgentProfile{
	func(id string) *pb.AgentProfile { return &pb.AgentProfile{Id: id} },
	func(id string) *pb.AgentProfile {
		return &pb.AgentProfile{Id: id, Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 2}, {Channel: email, Slots: 2}}}
	},
	func(id string) *pb.AgentProfile { return &pb.AgentProfile{Id: id, Blocking: voiceWithChat} },
	func(id string) *pb.AgentProfile {
		return &pb.AgentProfile{Id: id, Capacity: []*pb.ChannelCapacity{{Channel: voice, Slots: 2}}, Blocking: &pb.BlockingRules{}}
	},
}

// channelOf gives each contact id a usual channel and queue, so most
// arrivals of one id agree.
func channelOf(id string) (pb.Channel, string) {
	n := int(id[len(id)-1] - '0')
	return []pb.Channel{voice, chat, email, chat, voice, sms, email, callback}[n%8], poolQueues[n%2]
}

// next returns the next command. Time moves on by up to 200 ms, sometimes
// not at all (commands of one batch share their time).
func (d *driver) next() *pb.Command {
	if d.rng.IntN(10) > 0 {
		d.at += d.rng.Int64N(int64(200 * time.Millisecond))
	}
	var c *pb.Command
	switch p := d.rng.IntN(100); {
	case p < 5:
		c = d.arrival()
	case p < 10:
		c = d.agentAdmin()
	case p < 13: // the customer hangs up, at any time, perhaps again
		if cs := d.contacts(func(shard.Contact) bool { return true }); len(cs) > 0 {
			x := pick(d.rng, cs)
			c = cmd(d.at, &pb.ContactEnd{ContactId: x.ID(), Reason: pb.EndReason(d.rng.IntN(3))})
		}
	case p < 20:
	default:
		if steps := d.protocolSteps(); len(steps) > 0 {
			c = pick(d.rng, steps)()
		}
	}
	if c == nil {
		return d.garbage()
	}
	return c
}

// arrival is a new contact, or a carrier retrying an arrival.
func (d *driver) arrival() *pb.Command {
	r := d.rng
	id := fmt.Sprintf("c%d", d.contactIDs)
	if r.IntN(4) == 0 && d.contactIDs > 0 {
		id = pick(r, d.contactsInPlay())
	} else {
		d.contactIDs++
	}
	ch, q := channelOf(id)
	a := arrive(id, q, ch)
	if r.IntN(10) == 0 {
		a.Queue = pick(r, poolQueues)
	}
	if r.IntN(10) == 0 {
		a.Channel = pick(r, shard.Channels)
	}
	a.Priority = r.Int32N(3)
	return cmd(d.at, a)
}

func (d *driver) agentAdmin() *pb.Command {
	r := d.rng
	agent := pick(r, poolAgents)
	switch r.IntN(6) {
	case 0, 1:
		return cmd(d.at, loginAs(pick(r, profiles)(agent), r.IntN(2) == 0))
	case 2:
		return cmd(d.at, logout(agent))
	case 3, 4:
		return cmd(d.at, ready(agent))
	}
	return cmd(d.at, notReady(agent, pick(r, []string{"", "break", "lunch"})))
}

// protocolSteps lists every step the routing protocol could take next, one
// per contact or slot it would move, each as a command maker.
func (d *driver) protocolSteps() []func() *pb.Command {
	r := d.rng
	var steps []func() *pb.Command
	var agents []shard.Agent
	for _, id := range poolAgents {
		if a, ok := d.s.Agent(id); ok {
			agents = append(agents, a)
		}
	}
	for _, c := range d.contacts(func(shard.Contact) bool { return true }) {
		sl, has := d.slotOf(c.AgentID, c.OfferID, c.ID())
		switch {
		case c.State == queued:
			// Routing holds the contact for an agent: mostly one with room
			// on its channel, sometimes anyone.
			steps = append(steps, func() *pb.Command {
				var room []string
				for _, a := range agents {
					if free, ok := freeSafely(a); ok && free[c.Arrival.GetChannel()%shard.NumChannels] > 0 {
						room = append(room, a.ID())
					}
				}
				agent := pick(r, poolAgents)
				if len(room) > 0 && r.IntN(5) > 0 {
					agent = pick(r, room)
				}
				d.offers++
				return cmd(d.at, lock(c.ID(), agent, fmt.Sprintf("o%d", d.offers)))
			})
		case c.State == reserved && !has && strings.HasPrefix(c.OfferID, "o"):
			// The agent's side grants the reservation, or it is declined
			// (or the offer already ended) and the contact goes back.
			steps = append(steps, func() *pb.Command {
				if !d.reserved[c.OfferID] && r.IntN(6) > 0 {
					d.reserved[c.OfferID] = true
					res := reserve(c.AgentID, c.OfferID, c.ID(), c.Arrival.GetChannel())
					res.Deadline = d.at + int64(15*time.Second)
					return cmd(d.at, res)
				}
				return cmd(d.at, unlock(c.ID(), c.OfferID, pb.UnlockReason(r.IntN(4))))
			})
		case c.State == reserved && has && sl.State == slotBusy:
			steps = append(steps, func() *pb.Command { return cmd(d.at, connect(c.ID(), c.OfferID)) })
		case c.State == inWrapUp && !has:
			steps = append(steps, func() *pb.Command { return cmd(d.at, done(c.ID(), c.OfferID)) })
		case c.State == connected && r.IntN(4) == 0:
			steps = append(steps, func() *pb.Command {
				return cmd(d.at, media(c.ID(), pick(r, []pb.MediaKind{1, 3, 3, 4, 4, 5})))
			})
		}
	}
	for _, a := range agents {
		for _, sl := range a.Slots {
			agent, sl := a.ID(), sl
			switch sl.State {
			case slotOffered: // the desktop answers
				steps = append(steps, func() *pb.Command {
					o := outcome(agent, sl.OfferID, pick(r, []pb.OfferOutcomeKind{1, 1, 1, 1, 2, 3, 4}))
					o.NotReady = r.IntN(4) == 0
					return cmd(d.at, o)
				})
			case slotBusy: // the agent's side hears the contact ended
				c, ok := d.s.Contact(sl.ContactID)
				if sl.ContactShard == testShard && ok && !c.Terminal() && c.State != inWrapUp {
					continue
				}
				steps = append(steps, func() *pb.Command {
					until := int64(0)
					if r.IntN(3) > 0 {
						until = d.at + r.Int64N(int64(2*time.Second))
					}
					return cmd(d.at, contactEnded(agent, sl.OfferID, until, r.IntN(2) == 0))
				})
			case slotWrapUp: // by the agent or the time box
				steps = append(steps, func() *pb.Command { return cmd(d.at, wrapUpDone(agent, sl.OfferID, r.IntN(2) == 0)) })
			}
		}
	}
	return steps
}

// garbage returns a command the protocol would not send. Contact commands
// use invented offers only, and invented reservations name contacts of
// another shard, so garbage cannot fake a second holder for a contact of
// this shard; everything else is fair game.
func (d *driver) garbage() *pb.Command {
	r := d.rng
	contact := pick(r, append([]string{"", "ghost", "c0"}, d.contactsInPlay()...))
	agent := pick(r, append([]string{"", "ghost"}, poolAgents...))
	offer := pick(r, append([]string{""}, garbageOffers...))
	anyOffer := offer
	if d.offers > 0 && r.IntN(2) == 0 {
		anyOffer = fmt.Sprintf("o%d", 1+r.IntN(d.offers))
	}
	ch := pb.Channel(r.IntN(9) - 1) // -1 .. 7
	at := d.at
	if d.skewClock && r.IntN(20) == 0 {
		at = pick(r, []int64{d.at - r.Int64N(int64(time.Minute)), d.at + r.Int64N(int64(time.Hour)), r.Int64() - r.Int64()})
	}
	switch r.IntN(20) {
	case 0:
		return nil
	case 1:
		return cmd(at, nil)
	case 2:
		return withVersion(cmd(at, arrive(contact, "sales", voice)), pick(r, []uint32{0, 2, 1 << 31}))
	case 3:
		return cmd(at, &pb.ContactArrive{ContactId: contact, Queue: pick(r, []string{"", "sales", "support"}), Channel: ch, ArrivedAt: r.Int64N(2 * d.at)})
	case 4:
		return cmd(at, lock(contact, agent, offer))
	case 5:
		return cmd(at, unlock(contact, offer, pb.UnlockReason(r.IntN(6)-1)))
	case 6:
		return cmd(at, connect(contact, offer))
	case 7:
		return cmd(at, &pb.ContactEnd{ContactId: contact, Reason: pb.EndReason(r.IntN(5) - 1)})
	case 8:
		return cmd(at, done(contact, offer))
	case 9:
		return cmd(at, media(contact, pb.MediaKind(r.IntN(8)-1)))
	case 10:
		p := &pb.AgentProfile{Id: agent}
		for range r.IntN(3) {
			p.Capacity = append(p.Capacity, &pb.ChannelCapacity{Channel: pb.Channel(r.IntN(9) - 1), Slots: uint32(r.IntN(4))})
		}
		if r.IntN(2) == 0 {
			p.Blocking = &pb.BlockingRules{Blocks: []*pb.ChannelBlock{{Channel: pb.Channel(r.IntN(9) - 1), Blocks: []pb.Channel{pb.Channel(r.IntN(9) - 1)}}}}
		}
		return cmd(at, loginAs(p, r.IntN(2) == 0))
	case 11:
		return cmd(at, logout(agent))
	case 12:
		return cmd(at, &pb.AgentPresenceChange{AgentId: agent, Presence: pb.AgentPresence(r.IntN(6) - 1), Reason: pick(r, []string{"", "x"})})
	case 13, 14:
		res := reserve(agent, offer, contact, ch)
		res.ContactShard = otherShard
		return cmd(at, res)
	case 15, 16:
		o := outcome(agent, anyOffer, pb.OfferOutcomeKind(r.IntN(7)-1))
		o.NotReady = r.IntN(2) == 0
		return cmd(at, o)
	case 17:
		return cmd(at, contactEnded(agent, anyOffer, at+r.Int64N(int64(time.Second))-int64(time.Second/2), r.IntN(2) == 0))
	case 18:
		return cmd(at, wrapUpDone(agent, anyOffer, r.IntN(2) == 0))
	}
	return cmd(at, &pb.AgentReserve{}) // all fields empty
}

// capacityModel is the capacity the profile promises, worked out here
// independently of shard.Capacity: the listed slots per known channel, or
// the defaults when none are listed.
func capacityModel(p *pb.AgentProfile) map[pb.Channel]uint32 {
	if len(p.GetCapacity()) == 0 {
		return map[pb.Channel]uint32{voice: 1, chat: 3, email: 5, sms: 3, callback: 1}
	}
	c := map[pb.Channel]uint32{}
	for _, cc := range p.GetCapacity() {
		c[cc.GetChannel()] += cc.GetSlots()
	}
	return c
}

func slotsPerChannel(slots []shard.Slot) map[pb.Channel]uint32 {
	n := map[pb.Channel]uint32{}
	for _, sl := range slots {
		n[sl.Channel]++
	}
	return n
}

// freeSafely is a.Free(), or ok=false if it panics.
func freeSafely(a shard.Agent) (free [shard.NumChannels]uint32, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return a.Free(), true
}

// checkInvariants checks what must hold of any state the commands built.
// crossShard also checks agreement between the shard's agents and its
// contacts; that holds only while no contact an agent still refers to is
// forgotten, so runs with a short retention leave it out.
// nextSeq, when not 0, is the state's next seq, which every contact's seq
// must be below.
func checkInvariants(t *testing.T, s *shard.State, nextSeq uint64, crossShard bool) {
	t.Helper()
	contacts := map[string]shard.Contact{}
	seqs := map[uint64]string{}
	s.Contacts(func(c shard.Contact) { contacts[c.ID()] = c })
	for id, c := range contacts {
		if other, dup := seqs[c.Seq]; dup || c.Seq == 0 || (nextSeq > 0 && c.Seq >= nextSeq) {
			t.Fatalf("contact %q has seq %d (next %d, also %q)", id, c.Seq, nextSeq, other)
		}
		seqs[c.Seq] = id
		switch {
		case held(c.State) && (c.OfferID == "" || c.AgentID == ""):
			t.Fatalf("contact %q is %v without an assignment", id, c.State)
		case c.State == queued && (c.OfferID != "" || c.AgentID != ""):
			t.Fatalf("queued contact %q still held by %q/%q", id, c.AgentID, c.OfferID)
		case c.Terminal() && c.EndedAt != c.StateSince:
			t.Fatalf("contact %q is %v since %d but ended at %d", id, c.State, c.StateSince, c.EndedAt)
		case !c.Terminal() && c.EndedAt != 0:
			t.Fatalf("contact %q is %v but has ended at %d", id, c.State, c.EndedAt)
		}
	}
	holders := map[string][]string{} // contact of this shard -> "agent/offer" slots naming it
	s.Agents(func(a shard.Agent) {
		if !a.LoggedIn() && len(a.Slots) > 0 {
			t.Fatalf("agent %q is %v but holds %d slots", a.ID(), a.Presence, len(a.Slots))
		}
		capacity, used := capacityModel(a.Profile), slotsPerChannel(a.Slots)
		for ch := range used {
			if used[ch] > capacity[ch] {
				t.Fatalf("agent %q holds %d slots on %v, capacity %d (DESIGN.md 2)", a.ID(), used[ch], ch, capacity[ch])
			}
		}
		if len(a.Recent) > shard.MaxRecent {
			t.Fatalf("agent %q remembers %d recent offers, at most %d", a.ID(), len(a.Recent), shard.MaxRecent)
		}
		offers := map[string]bool{}
		for _, sl := range a.Slots {
			if offers[sl.OfferID] || sl.OfferID == "" {
				t.Fatalf("agent %q holds offer %q twice (or empty)", a.ID(), sl.OfferID)
			}
			offers[sl.OfferID] = true
			if sl.State != slotOffered && sl.State != slotBusy && sl.State != slotWrapUp {
				t.Fatalf("agent %q slot %q is %v", a.ID(), sl.OfferID, sl.State)
			}
			if sl.ContactShard == testShard {
				holders[sl.ContactID] = append(holders[sl.ContactID], a.ID()+"/"+sl.OfferID)
			}
		}
	})
	if !crossShard {
		return
	}
	for id, hs := range holders {
		c, ok := contacts[id]
		if !ok {
			t.Fatalf("slots %v name contact %q, which this shard does not hold", hs, id)
		}
		if len(hs) > 1 {
			t.Fatalf("contact %q is held by %d slots %v (DESIGN.md 2: never offered to two agents)", id, len(hs), hs)
		}
		if held(c.State) && hs[0] != c.AgentID+"/"+c.OfferID {
			t.Fatalf("contact %q is %v for %s/%s but slot %s names it", id, c.State, c.AgentID, c.OfferID, hs[0])
		}
	}
}

// encode is the snapshot's deterministic encoding. The property tests
// compare snapshots by these bytes rather than proto.Equal: for these
// messages (no floats, no unknown fields) equal bytes and proto.Equal agree,
// and encoding is many times faster than reflective comparison.
func encode(snap *pb.ShardSnapshot) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(snap)
	if err != nil {
		panic(err)
	}
	return b
}

// snapshotDiff names the records that differ between two snapshots, or
// returns "" when they are equal.
func snapshotDiff(a, b *pb.ShardSnapshot) string {
	if proto.Equal(a, b) {
		return ""
	}
	var out strings.Builder
	if a.GetNextSeq() != b.GetNextSeq() {
		fmt.Fprintf(&out, "next_seq %d vs %d\n", a.GetNextSeq(), b.GetNextSeq())
	}
	contacts := func(s *pb.ShardSnapshot) map[string]*pb.ContactRecord {
		m := map[string]*pb.ContactRecord{}
		for _, c := range s.GetContacts() {
			m[c.GetArrival().GetContactId()] = c
		}
		return m
	}
	ca, cb := contacts(a), contacts(b)
	for id, x := range ca {
		if y, ok := cb[id]; !ok {
			fmt.Fprintf(&out, "contact %s only in the first: %s\n", id, describe(x))
		} else if !proto.Equal(x, y) {
			fmt.Fprintf(&out, "contact %s:\n  %s\n  %s\n", id, describe(x), describe(y))
		}
	}
	for id, y := range cb {
		if _, ok := ca[id]; !ok {
			fmt.Fprintf(&out, "contact %s only in the second: %s\n", id, describe(y))
		}
	}
	agents := func(s *pb.ShardSnapshot) map[string]*pb.AgentRecord {
		m := map[string]*pb.AgentRecord{}
		for _, r := range s.GetAgents() {
			m[r.GetProfile().GetId()] = r
		}
		return m
	}
	aa, ab := agents(a), agents(b)
	for id, x := range aa {
		if y := ab[id]; !proto.Equal(x, y) {
			fmt.Fprintf(&out, "agent %s:\n  %s\n  %s\n", id, describe(x), describe(y))
		}
	}
	for id, y := range ab {
		if _, ok := aa[id]; !ok {
			fmt.Fprintf(&out, "agent %s only in the second: %s\n", id, describe(y))
		}
	}
	if out.Len() == 0 {
		return "snapshots differ in order only"
	}
	return out.String()
}

// outcomeOf summarises a result for comparing replicas.
func outcomeOf(r shard.Result, panicked any) string {
	if panicked != nil {
		return fmt.Sprintf("panic: %v", panicked)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "code=%v dup=%v", shard.CodeOf(r.Err), r.Duplicate)
	for _, e := range r.Events {
		enc, _ := proto.MarshalOptions{Deterministic: true}.Marshal(e)
		fmt.Fprintf(&b, " event=%x", enc)
	}
	return b.String()
}

// runProperty applies steps commands and checks after each. With
// crossShard, time only moves forward and retention is long, so no contact
// an agent refers to is forgotten and agents and contacts must agree;
// without it, garbage may carry any time.
func runProperty(t *testing.T, seed uint64, steps int, retention int64, crossShard bool) {
	s := shard.New(testShard, retention)
	// twin applies every command right after s, so until it does it holds
	// the state before the command: refusals are checked against it, and
	// afterwards it must answer and look exactly like s (determinism).
	twin := shard.New(testShard, retention)
	replica := shard.New(testShard, retention) // restored from s every so often
	d := newDriver(seed, s, !crossShard)
	var panics int
	var firstPanic string
	for i := range steps {
		if i%250 == 0 {
			replica = shard.New(testShard, retention)
			if err := replica.Restore(s.Snapshot()); err != nil {
				t.Fatalf("step %d: restore: %v", i, err)
			}
			if !proto.Equal(s.Snapshot(), replica.Snapshot()) {
				t.Fatalf("step %d: snapshot -> restore -> snapshot differs", i)
			}
		}
		c := d.next()
		var agentBefore shard.Agent
		if res := c.GetAgentReserve(); res != nil {
			agentBefore, _ = s.Agent(res.GetAgentId())
		}
		r, p := applySafely(s, c)
		if p != nil {
			panics++
			if firstPanic == "" {
				firstPanic = fmt.Sprintf("step %d: Apply(%s) panicked: %v", i, describe(c), p)
			}
		}
		switch {
		case p != nil:
		case r.Err != nil:
			if code := shard.CodeOf(r.Err); code == pb.ErrorCode_ERROR_CODE_INTERNAL || code == pb.ErrorCode_ERROR_CODE_UNSPECIFIED {
				t.Fatalf("step %d: %s refused with code %v: %v", i, describe(c), code, r.Err)
			}
			if after, before := s.Snapshot(), twin.Snapshot(); len(r.Events) > 0 || !bytes.Equal(encode(after), encode(before)) {
				t.Fatalf("step %d: refused %s (%v) emitted %v or changed the state (before vs after):\n%s",
					i, describe(c), r.Err, r.Events, snapshotDiff(before, after))
			}
		case r.Duplicate:
			if after, before := s.Snapshot(), twin.Snapshot(); len(r.Events) > 0 || !bytes.Equal(encode(after), encode(before)) {
				t.Fatalf("step %d: duplicate %s emitted %v or changed the state (before vs after):\n%s",
					i, describe(c), r.Events, snapshotDiff(before, after))
			}
		default:
			if len(r.Events) == 0 {
				t.Fatalf("step %d: %s changed the state without an event", i, describe(c))
			}
			if res := c.GetAgentReserve(); res != nil {
				free, ok := freeSafely(agentBefore)
				if ch := res.GetChannel(); !ok || ch < 0 || int(ch) >= len(free) || free[ch] == 0 {
					t.Fatalf("step %d: reservation %s granted on %v with free %v (ok=%v), slots %+v",
						i, res.GetOfferId(), ch, free, ok, agentBefore.Slots)
				}
			}
		}

		rt, pt := applySafely(twin, c)
		rr, pr := applySafely(replica, c)
		if got, want := outcomeOf(rt, pt), outcomeOf(r, p); got != want {
			t.Fatalf("step %d: %s\ntwin answered  %s\nstate answered %s", i, describe(c), got, want)
		}
		if got, want := outcomeOf(rr, pr), outcomeOf(r, p); got != want {
			t.Fatalf("step %d: %s\nrestored replica answered %s\nstate answered           %s", i, describe(c), got, want)
		}
		// Answers are compared at every step, whole states every few.
		if i%10 == 9 || i == steps-1 {
			snap := s.Snapshot()
			enc := encode(snap)
			if tw := twin.Snapshot(); !bytes.Equal(enc, encode(tw)) {
				t.Fatalf("step %d: %s: two states fed the same commands differ (state vs twin):\n%s", i, describe(c), snapshotDiff(snap, tw))
			}
			if rs := replica.Snapshot(); !bytes.Equal(enc, encode(rs)) {
				t.Fatalf("step %d: %s: replica restored at step %d differs (state vs replica):\n%s", i, describe(c), i/250*250, snapshotDiff(snap, rs))
			}
			checkInvariants(t, s, snap.GetNextSeq(), crossShard)
		} else {
			checkInvariants(t, s, 0, crossShard)
		}
	}
	if panics > 0 {
		t.Errorf("Apply panicked on %d of %d commands; first: %s", panics, steps, firstPanic)
	}
	n := map[pb.ContactState]int{}
	s.Contacts(func(c shard.Contact) { n[c.State]++ })
	var handled uint64
	s.Agents(func(a shard.Agent) { handled += a.Counters.Handled })
	t.Logf("seed %d: %d contacts, %d offers, %d handled; contacts now by state %v", seed, d.contactIDs, d.offers, handled, n)
}

// propertySteps is the number of commands per seed: 3000, fewer in -short
// and -race runs.
func propertySteps() int {
	switch {
	case testing.Short():
		return 500
	case raceEnabled:
		return 1000
	}
	return 3000
}

// TestProperty_Invariants: long retention, so every contact an agent refers
// to is still in the shard and the cross-shard checks apply.
func TestProperty_Invariants(t *testing.T) {
	steps := propertySteps()
	for _, seed := range []uint64{1, 2, 3, 42} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runProperty(t, seed, steps, 0, true) })
	}
}

// TestProperty_WithRetention: ended contacts are forgotten after 20 s and
// arrive again under the same ids; replicas must still agree.
func TestProperty_WithRetention(t *testing.T) {
	steps := propertySteps()
	for _, seed := range []uint64{7, 8} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			runProperty(t, seed, steps, int64(20*time.Second), false)
		})
	}
}
