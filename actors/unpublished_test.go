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
	if kept := u.evs[u.start:]; len(kept) != 2 || kept[0].GetAt() != 2+unpublishedFor {
		t.Fatalf("kept %d events from %d; want the 2 within unpublishedFor of the newest", len(kept), kept[0].GetAt())
	}
	u.keep([]*pb.Event{ev(3 + unpublishedFor), ev(4 + unpublishedFor)})
	if kept := u.evs[u.start:]; len(kept) != 4 || kept[0].GetAt() != 2+unpublishedFor || kept[3].GetAt() != 4+unpublishedFor {
		t.Fatalf("kept %d events from %d; want the 4 within unpublishedFor of the newest, in order", len(kept), kept[0].GetAt())
	}
	many := make([]*pb.Event, maxUnpublished+10)
	for i := range many {
		many[i] = ev(10 + unpublishedFor)
	}
	u.keep(many)
	if kept := u.evs[u.start:]; len(kept) != maxUnpublished {
		t.Fatalf("kept %d events; want at most %d", len(kept), maxUnpublished)
	}
	if got := u.take(); len(got) != maxUnpublished || len(u.evs) != 0 {
		t.Fatalf("take gave %d events and left %d; want %d and none", len(got), len(u.evs), maxUnpublished)
	}
}
