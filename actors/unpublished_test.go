package actors

import (
	"testing"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// A replica keeps what it did not publish for unpublishedFor, at most
// maxUnpublished events.
func TestUnpublishedEventsAreBounded(t *testing.T) {
	var u unpublished
	ev := func(at int64) *pb.Event { return &pb.Event{At: at} }
	u.keep([]*pb.Event{ev(1), ev(2)})
	u.keep([]*pb.Event{ev(2 + unpublishedFor), ev(3 + unpublishedFor)})
	if len(u.evs) != 2 || u.evs[0].GetAt() != 2+unpublishedFor {
		t.Fatalf("kept %d events from %d; want the 2 within unpublishedFor of the newest", len(u.evs), u.evs[0].GetAt())
	}
	many := make([]*pb.Event, maxUnpublished+10)
	for i := range many {
		many[i] = ev(10 + unpublishedFor)
	}
	u.keep(many)
	if len(u.evs) != maxUnpublished {
		t.Fatalf("kept %d events; want at most %d", len(u.evs), maxUnpublished)
	}
}
