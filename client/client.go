// Package client speaks tsunagu's NATS contract from the outside: the
// carrier's side (arrivals, media events, routing instructions) and the
// agent desktop's side (commands, notices), plus the event stream. The
// load test and the end-to-end tests use it; so can integrators.
package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/tsunagu/tsunagu/gateway"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Client sends requests and decodes what tsunagu publishes.
type Client struct {
	nc  *nats.Conn
	enc gateway.Encoding
	// Carrier is who this client hands contacts over as (arrivals and media
	// events go under tsunagu.v1.carriers.<Carrier>).
	Carrier string
	// Fences refuses notices and instructions from deposed shard owners.
	Fences *Fences
}

// New returns a client on nc that sends in enc, as carrier "default".
func New(nc *nats.Conn, enc gateway.Encoding) *Client {
	return &Client{nc: nc, enc: enc, Carrier: "default", Fences: NewFences()}
}

// Conn returns the client's NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Error is an error reply from tsunagu.
type Error struct {
	Code    pb.ErrorCode
	Message string
}

func (e *Error) Error() string {
	return strings.ToLower(strings.TrimPrefix(e.Code.String(), "ERROR_CODE_")) + ": " + e.Message
}

func replyErr(e *pb.Error) error {
	if e == nil {
		return nil
	}
	return &Error{Code: e.GetCode(), Message: e.GetMessage()}
}

// Marshal encodes m in enc.
func Marshal(m proto.Message, enc gateway.Encoding) ([]byte, error) {
	if enc == gateway.JSON {
		return protojson.Marshal(m)
	}
	return proto.Marshal(m)
}

// Decode decodes a message by its Content-Type header. Fields this client
// does not know are skipped, so a newer node's additions (new event kinds)
// do not break it.
func Decode(msg *nats.Msg, m proto.Message) error {
	if strings.HasPrefix(msg.Header.Get(gateway.HeaderContentType), gateway.ContentJSON) {
		return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(msg.Data, m)
	}
	return proto.Unmarshal(msg.Data, m)
}

func (c *Client) header() nats.Header {
	if c.enc == gateway.JSON {
		return nats.Header{gateway.HeaderContentType: []string{gateway.ContentJSON}}
	}
	return nil
}

// request sends req and decodes the reply into reply.
func (c *Client) request(ctx context.Context, subject string, req, reply proto.Message) error {
	data, err := Marshal(req, c.enc)
	if err != nil {
		return err
	}
	return c.RequestRaw(ctx, subject, data, c.header(), reply)
}

// RequestRaw sends data as is (for tests of bad input) and decodes the reply.
func (c *Client) RequestRaw(ctx context.Context, subject string, data []byte, h nats.Header, reply proto.Message) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	resp, err := c.nc.RequestMsgWithContext(ctx, &nats.Msg{Subject: subject, Data: data, Header: h})
	if err != nil {
		return fmt.Errorf("client: %s: %w", subject, err)
	}
	if err := Decode(resp, reply); err != nil {
		return fmt.Errorf("client: %s: reply: %w", subject, err)
	}
	return nil
}

// Arrive hands over a contact; a refusal is returned as *Error.
func (c *Client) Arrive(ctx context.Context, a *pb.ContactArrival) (*pb.ArrivalReply, error) {
	r := &pb.ArrivalReply{}
	if err := c.request(ctx, gateway.ArriveSubject(c.Carrier), a, r); err != nil {
		return nil, err
	}
	return r, replyErr(r.GetError())
}

// Media sends a media event for a contact.
func (c *Client) Media(ctx context.Context, queue, contactID string, ev *pb.MediaEvent) (*pb.MediaEventReply, error) {
	r := &pb.MediaEventReply{}
	if err := c.request(ctx, gateway.MediaSubject(c.Carrier, queue, contactID), ev, r); err != nil {
		return nil, err
	}
	return r, replyErr(r.GetError())
}

// PublishMedia sends a media event without waiting for a reply.
func (c *Client) PublishMedia(queue, contactID string, ev *pb.MediaEvent) error {
	data, err := Marshal(ev, c.enc)
	if err != nil {
		return err
	}
	return c.nc.PublishMsg(&nats.Msg{Subject: gateway.MediaSubject(c.Carrier, queue, contactID), Data: data, Header: c.header()})
}

// Agent sends a desktop command for agentID.
func (c *Client) Agent(ctx context.Context, agentID string, cmd *pb.AgentCommand) (*pb.AgentCommandReply, error) {
	r := &pb.AgentCommandReply{}
	if err := c.request(ctx, gateway.AgentCommandSubject(agentID), cmd, r); err != nil {
		return nil, err
	}
	return r, replyErr(r.GetError())
}

// QueueStatus asks for a queue's figures.
func (c *Client) QueueStatus(ctx context.Context, queue string) (*pb.QueueStatusReply, error) {
	r := &pb.QueueStatusReply{}
	if err := c.request(ctx, gateway.QueueStatusSubject(queue), &pb.QueueStatusRequest{}, r); err != nil {
		return nil, err
	}
	return r, replyErr(r.GetError())
}

// Notices calls fn with every notice for agentID (on the subscription's
// goroutine), except those from a deposed owner (see Fences).
func (c *Client) Notices(agentID string, fn func(*pb.AgentNotice)) (*nats.Subscription, error) {
	return c.nc.Subscribe(gateway.AgentNoticeSubject(agentID), func(m *nats.Msg) {
		n := &pb.AgentNotice{}
		if Decode(m, n) == nil && c.Fences.Admit(n.GetFence()) {
			fn(n)
		}
	})
}

// AllNotices calls fn with every notice for every agent, except those from
// a deposed owner.
func (c *Client) AllNotices(fn func(agentID string, n *pb.AgentNotice)) (*nats.Subscription, error) {
	return c.nc.Subscribe("tsunagu.v1.agents.*.notices", func(m *nats.Msg) {
		n := &pb.AgentNotice{}
		if Decode(m, n) == nil && c.Fences.Admit(n.GetFence()) {
			fn(strings.Split(m.Subject, ".")[3], n)
		}
	})
}

// ServeInstructions answers the routing instructions of carrier with what fn
// returns (nil: no answer, so tsunagu retries).
func (c *Client) ServeInstructions(carrier string, fn func(*pb.RoutingInstruction) *pb.InstructionAck) (*nats.Subscription, error) {
	return c.nc.Subscribe(gateway.InstructionSubject(carrier), func(m *nats.Msg) {
		in := &pb.RoutingInstruction{}
		if err := Decode(m, in); err != nil {
			return
		}
		var ack *pb.InstructionAck
		if c.Fences.Admit(in.GetFence()) {
			ack = fn(in)
		} else {
			// A deposed owner's instruction is refused, not carried out.
			ack = &pb.InstructionAck{SchemaVersion: 1, InstructionId: in.GetInstructionId(), Error: &pb.Error{
				Code:    pb.ErrorCode_ERROR_CODE_STALE_TERM,
				Message: fmt.Sprintf("instruction fenced with shard %d term %d; a newer owner has been heard from", in.GetFence().GetShard(), in.GetFence().GetTerm()),
			}}
		}
		if ack == nil || m.Reply == "" {
			return
		}
		data, err := Marshal(ack, c.enc)
		if err != nil {
			return
		}
		_ = c.nc.PublishMsg(&nats.Msg{Subject: m.Reply, Data: data, Header: c.header()})
	})
}

// Events calls fn with every event batch of every shard.
func (c *Client) Events(fn func(*pb.EventBatch)) (*nats.Subscription, error) {
	return c.nc.Subscribe(gateway.SubjectEventsAll, func(m *nats.Msg) {
		b := &pb.EventBatch{}
		if Decode(m, b) == nil {
			fn(b)
		}
	})
}
