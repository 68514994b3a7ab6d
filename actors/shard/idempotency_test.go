package shard_test

import (
	"fmt"
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// TestApply_RetriesAreDuplicates: every command may be delivered again (a
// carrier retries, a new owner re-proposes). A retry whose effect is in
// place is answered as a duplicate, with the current record, no events and
// no change.
func TestApply_RetriesAreDuplicates(t *testing.T) {
	path := upTo(stepDone)
	step := func(i int) *pb.Command { return path[1+i] }
	retriedArrival := arrive("c1", "sales", voice)
	retriedArrival.Priority = 9 // the first arrival's contents stand
	later := func(c *pb.Command) *pb.Command { c.At = sec(60); return c }

	tests := []struct {
		name    string
		given   []*pb.Command
		retry   *pb.Command
		contact *shard.Contact // the record the retry answers with
		agent   *shard.Agent
	}{
		{"arrival again while queued", upTo(stepArrive), step(stepArrive), ptr(c1At(stepArrive)), nil},
		{"arrival again with other details while queued", upTo(stepArrive), cmd(sec(60), retriedArrival), ptr(c1At(stepArrive)), nil},
		{"arrival again while connected", upTo(stepConnect), later(step(stepArrive)), ptr(c1At(stepConnect)), nil},
		{"arrival again after it ended", upTo(stepDone), later(step(stepArrive)), ptr(c1At(stepDone)), nil},
		{"lock again with the same offer", upTo(stepLock), later(step(stepLock)), ptr(c1At(stepLock)), nil},
		{"connect again", upTo(stepConnect), later(step(stepConnect)), ptr(c1At(stepConnect)), nil},
		{"hang-up again in wrap-up", upTo(stepHangUp), later(step(stepHangUp)), ptr(c1At(stepHangUp)), nil},
		{"hang-up again after done", upTo(stepDone), later(step(stepHangUp)), ptr(c1At(stepDone)), nil},
		{"done again", upTo(stepDone), later(step(stepDone)), ptr(c1At(stepDone)), nil},
		{"answered again", then(upTo(stepConnect), cmd(sec(30), media("c1", pb.MediaKind_MEDIA_KIND_ANSWERED))),
			cmd(sec(31), media("c1", pb.MediaKind_MEDIA_KIND_ANSWERED)),
			ptr(change(c1At(stepConnect), func(c *shard.Contact) { c.Answered = true })), nil},
		{"reserve again with the same offer", upTo(stepReserve), later(step(stepReserve)), nil, ptr(a1At(stepReserve))},
		{"reserve again after the offer was accepted", upTo(stepAccept), later(step(stepReserve)), nil, ptr(a1At(stepAccept))},
		{"accepted twice", upTo(stepAccept), later(step(stepAccept)), nil, ptr(a1At(stepAccept))},
		{"contact ended again in wrap-up", upTo(stepAgentEnded), later(step(stepAgentEnded)), nil, ptr(a1At(stepAgentEnded))},
		{"contact ended again after the slot was freed", upTo(stepWrapUpDone), later(step(stepAgentEnded)), nil, ptr(a1At(stepWrapUpDone))},
		{"not ready again with the same reason", then(upTo(beforeArrival), cmd(sec(30), notReady("a1", "lunch"))),
			cmd(sec(31), notReady("a1", "lunch")),
			nil, ptr(changeAgent(a1At(beforeArrival), func(a *shard.Agent) {
				a.Presence, a.Reason, a.PresenceSince, a.Version = notReadyP, "lunch", sec(30), 2
			}))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := given(t, tc.given...)
			r := retry(t, s, tc.retry)
			if tc.contact != nil {
				if !r.HasContact {
					t.Fatalf("duplicate carries no contact record")
				}
				assertContact(t, r.Contact, *tc.contact)
			}
			if tc.agent != nil {
				if !r.HasAgent {
					t.Fatalf("duplicate carries no agent record")
				}
				assertAgent(t, r.Agent, *tc.agent)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestContactArrive_SameIDOtherContentsIsAConflict: the carrier's id makes
// arrivals idempotent, so the same id in another queue or channel is a
// different contact under a reused id, never silently merged.
func TestContactArrive_SameIDOtherContentsIsAConflict(t *testing.T) {
	s := given(t, upTo(stepArrive)...)
	refuse(t, s, cmd(sec(30), arrive("c1", "support", voice)), shard.ErrConflict, `"c1"`, `"sales"`)
	refuse(t, s, cmd(sec(31), arrive("c1", "sales", email)), shard.ErrConflict, `"c1"`)
	retry(t, s, cmd(sec(32), arrive("c1", "sales", voice)))
}

// TestAgentReserve_OfferThatLeftIsNotGrantedAgain: AgentRecord.recent exists
// "so a retried request about one is answered with its outcome, never
// granted again" (commands.proto). A reservation retried after its offer was
// rejected, missed, withdrawn or handled must not hand the agent the same
// offer a second time.
func TestAgentReserve_OfferThatLeftIsNotGrantedAgain(t *testing.T) {
	endings := map[string][]*pb.Command{
		"rejected":  then(upTo(stepReserve), cmd(sec(30), reject("a1", "o1"))),
		"missed":    then(upTo(stepReserve), cmd(sec(30), miss("a1", "o1", false))),
		"withdrawn": then(upTo(stepReserve), cmd(sec(30), withdraw("a1", "o1"))),
		"handled":   upTo(stepWrapUpDone),
	}
	for how, history := range endings {
		t.Run(how, func(t *testing.T) {
			s := given(t, history...)
			before := s.Snapshot()
			r := s.Apply(cmd(sec(60), reserve("a1", "o1", "c1", voice)))
			if a := agentOf(t, s, "a1"); len(a.Slots) > 0 {
				t.Errorf("offer o1, already %s, was granted again: slots %+v (result err=%v duplicate=%v)", how, a.Slots, r.Err, r.Duplicate)
			}
			if r.Err == nil && !r.Duplicate {
				t.Errorf("retried reservation of an offer already %s was applied as new", how)
			}
			assertUnchanged(t, "retried reservation of a finished offer", before, s.Snapshot())
		})
	}
}

// TestAgent_RecentRemembersHowOffersLeft: the last MaxRecent offers that
// left an agent are kept, newest last, with how they ended.
func TestAgent_RecentRemembersHowOffersLeft(t *testing.T) {
	s := given(t, cmd(sec(0), login("a1", true)))
	n := shard.MaxRecent + 4
	for i := range n {
		o, c := fmt.Sprintf("o%d", i), fmt.Sprintf("c%d", i)
		mustApply(t, s, cmd(sec(int64(2*i+1)), reserve("a1", o, c, chat)))
		mustApply(t, s, cmd(sec(int64(2*i+2)), reject("a1", o)))
	}
	a := agentOf(t, s, "a1")
	if len(a.Recent) != shard.MaxRecent {
		t.Fatalf("len(Recent) = %d, want %d", len(a.Recent), shard.MaxRecent)
	}
	if got, want := a.Recent[len(a.Recent)-1].OfferID, fmt.Sprintf("o%d", n-1); got != want {
		t.Errorf("newest recent = %q, want %q", got, want)
	}
	if _, ok := a.Finished("o0"); ok {
		t.Errorf("o0 is still remembered after %d later offers", n-1)
	}
	f, ok := a.Finished(fmt.Sprintf("o%d", n-2))
	if !ok || f.How != pb.FinishedHow_FINISHED_HOW_REJECTED || f.ContactID != fmt.Sprintf("c%d", n-2) {
		t.Errorf("Finished(o%d) = %+v, %v; want rejected for c%d", n-2, f, ok, n-2)
	}
	if a.Counters.Rejected != uint64(n) || a.Counters.Offered != uint64(n) {
		t.Errorf("counters %+v, want %d offered and rejected", a.Counters, n)
	}
}
