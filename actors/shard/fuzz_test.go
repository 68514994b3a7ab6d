package shard_test

import (
	"testing"

	"github.com/tsunagu/tsunagu/actors/shard"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/proto"
)

// fuzzSeedState is agent a1 logged in ready and contact c1 queued.
func fuzzSeedState(t *testing.T) *shard.State {
	return given(t, upTo(stepArrive)...)
}

// fuzzSeeds are valid log entries the mutator starts from: the rest of c1's
// happy path, a multichannel mix, and a batch of refusals and oddities.
func fuzzSeeds() []*pb.CommandBatch {
	happy := &pb.CommandBatch{Commands: upTo(stepDone)[1+stepLock:]}
	withProfile := &pb.AgentProfile{Id: "a2", Skills: map[string]uint32{"billing": 3},
		Capacity: []*pb.ChannelCapacity{{Channel: chat, Slots: 2}, {Channel: voice, Slots: 1}},
		Blocking: voiceWithChat}
	mix := &pb.CommandBatch{Commands: []*pb.Command{
		cmd(sec(20), loginAs(withProfile, true)),
		cmd(sec(21), arrive("c2", "support", chat)),
		cmd(sec(21), lock("c2", "a2", "o2")),
		cmd(sec(21), reserve("a2", "o2", "c2", chat)),
		cmd(sec(22), reserve("a1", "o3", "c3", email)),
		cmd(sec(22), accept("a2", "o2")),
		cmd(sec(23), miss("a1", "o3", true)),
		cmd(sec(24), media("c2", pb.MediaKind_MEDIA_KIND_HOLD)),
		cmd(sec(25), contactEnded("a2", "o2", sec(55), true)),
		cmd(sec(26), wrapUpDone("a2", "o2", true)),
		cmd(sec(27), logout("a1")),
	}}
	odd := &pb.CommandBatch{Commands: []*pb.Command{
		{},
		withVersion(cmd(sec(30), arrive("c1", "sales", voice)), 2),
		cmd(sec(30), arrive("c1", "other", voice)),
		cmd(sec(30), arrive("c4", "sales", pb.Channel(99))),
		cmd(sec(30), unlock("c1", "o9", pb.UnlockReason_UNLOCK_REASON_MISSED)),
		cmd(sec(30), &pb.AgentPresenceChange{AgentId: "a1", Presence: offline}),
		cmd(sec(30), accept("a1", "nope")),
		cmd(sec(30), hangUp("c1")),
		cmd(sec(30), hangUp("c1")),
	}}
	// Enum values far outside their enums, as a buggy or hostile peer may
	// send them (protobuf enums are open).
	const far = 1 << 30
	outOfRange := &pb.CommandBatch{Commands: []*pb.Command{
		cmd(sec(40), &pb.AgentLogin{Profile: &pb.AgentProfile{Id: "a3",
			Capacity: []*pb.ChannelCapacity{{Channel: far, Slots: 1}, {Channel: chat, Slots: 1}},
			Blocking: &pb.BlockingRules{Blocks: []*pb.ChannelBlock{{Channel: chat, Blocks: []pb.Channel{far}}}}}, Ready: true}),
		cmd(sec(41), reserve("a3", "o4", "c4", far)),
		cmd(sec(41), reserve("a3", "o4", "c4", chat)),
		cmd(sec(42), arrive("c5", "sales", far)),
		cmd(sec(42), outcome("a3", "o4", far)),
		cmd(sec(42), &pb.AgentPresenceChange{AgentId: "a3", Presence: far}),
	}}
	return []*pb.CommandBatch{happy, mix, odd, outOfRange}
}

// FuzzApply decodes the input as one log entry and applies it to a small
// shard. Whatever arrives, Apply must answer without panicking (DESIGN.md
// 4), a refusal must change nothing, and no agent may exceed its capacity
// (DESIGN.md 2).
func FuzzApply(f *testing.F) {
	for _, b := range fuzzSeeds() {
		data, err := proto.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var batch pb.CommandBatch
		if err := proto.Unmarshal(data, &batch); err != nil {
			return
		}
		s := fuzzSeedState(t)
		for i, c := range batch.GetCommands() {
			before := encode(s.Snapshot())
			r := s.Apply(c)
			if r.Err != nil {
				if code := shard.CodeOf(r.Err); code == pb.ErrorCode_ERROR_CODE_INTERNAL {
					t.Fatalf("command %d refused with %v: %v", i, code, r.Err)
				}
				if after := encode(s.Snapshot()); string(before) != string(after) || len(r.Events) > 0 {
					t.Fatalf("command %d (%s) was refused (%v) but changed the state", i, describe(c), r.Err)
				}
			}
			s.Agents(func(a shard.Agent) {
				capacity, used := capacityModel(a.Profile), slotsPerChannel(a.Slots)
				for ch, n := range used {
					if n > capacity[ch] {
						t.Fatalf("after command %d (%s): agent %q holds %d slots on %v, capacity %d", i, describe(c), a.ID(), n, ch, capacity[ch])
					}
				}
			})
		}
	})
}
