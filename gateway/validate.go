package gateway

import (
	"regexp"
	"time"

	"github.com/tsunagu/tsunagu/actors/routing"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Limits on what a carrier or desktop may send.
const (
	MaxContactIDLen   = 128
	MaxCustomerKeyLen = 256
	MaxAttributes     = 64
	MaxAttrKeyLen     = 64
	MaxAttrValueLen   = 1024
	MaxSkills         = 32
	MaxPriority       = 100
	MaxReasonLen      = 64
	// MaxWaitCredit bounds how far back waiting_since may go.
	MaxWaitCredit = 24 * time.Hour
)

var (
	contactIDRE = regexp.MustCompile(`^[A-Za-z0-9_:-]{1,128}$`)
	carrierRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	languageRE  = regexp.MustCompile(`^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})?$`)
	dtmfRE      = regexp.MustCompile(`^[0-9*#A-Da-d]{1,32}$`)
	reasonRE    = regexp.MustCompile(`^[A-Za-z0-9_ .:-]{1,64}$`)
	offerIDRE   = regexp.MustCompile(`^[A-Za-z0-9_:#-]{1,200}$`)
)

func invalid(format string, args ...any) *decodeError {
	return refuse(pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, format, args...)
}

func validChannel(ch pb.Channel) bool {
	_, ok := pb.Channel_name[int32(ch)]
	return ok && ch != pb.Channel_CHANNEL_UNSPECIFIED
}

// validCarrier checks a carrier id from a subject.
func validCarrier(carrier string) *decodeError {
	if !carrierRE.MatchString(carrier) {
		return invalid("carrier %q in the subject is not valid: 1-64 letters, digits, '_' or '-'", carrier)
	}
	return nil
}

func validateArrival(carrier string, a *pb.ContactArrival, now time.Time) *decodeError {
	if e := checkVersion(a.GetSchemaVersion(), "ContactArrival"); e != nil {
		return e
	}
	if e := validCarrier(carrier); e != nil {
		return e
	}
	switch {
	case !contactIDRE.MatchString(a.GetContactId()):
		return invalid("contact_id %q is not valid: 1-%d letters, digits, '_', ':' or '-'", truncate(a.GetContactId(), 80), MaxContactIDLen)
	case !routing.ValidQueueName(a.GetQueue()):
		return invalid("queue %q is not a queue name", truncate(a.GetQueue(), 80))
	case !validChannel(a.GetChannel()):
		return invalid("channel %v is not valid; use CHANNEL_VOICE, CHANNEL_CHAT, CHANNEL_EMAIL, CHANNEL_SMS or CHANNEL_CALLBACK", a.GetChannel())
	case a.GetDirection() != pb.Direction_DIRECTION_UNSPECIFIED && pb.Direction_name[int32(a.GetDirection())] == "":
		return invalid("direction %v is not valid", a.GetDirection())
	case len(a.GetCustomerKey()) > MaxCustomerKeyLen:
		return invalid("customer_key is %d bytes; at most %d", len(a.GetCustomerKey()), MaxCustomerKeyLen)
	case a.GetPriority() < -MaxPriority || a.GetPriority() > MaxPriority:
		return invalid("priority %d is out of range; allowed -%d..%d", a.GetPriority(), MaxPriority, MaxPriority)
	case a.GetCarrier() != "" && a.GetCarrier() != carrier:
		return invalid("carrier %q does not match the subject's %q", a.GetCarrier(), carrier)
	case a.GetLanguage() != "" && !languageRE.MatchString(a.GetLanguage()):
		return invalid("language %q is not a language tag", a.GetLanguage())
	case len(a.GetSite()) > routing.MaxSiteLen:
		return invalid("site is %d bytes; at most %d", len(a.GetSite()), routing.MaxSiteLen)
	case len(a.GetAttributes()) > MaxAttributes:
		return invalid("%d attributes; at most %d", len(a.GetAttributes()), MaxAttributes)
	case len(a.GetSkills()) > MaxSkills:
		return invalid("%d skills; at most %d", len(a.GetSkills()), MaxSkills)
	}
	for k, v := range a.GetAttributes() {
		if k == "" || len(k) > MaxAttrKeyLen || len(v) > MaxAttrValueLen {
			return invalid("attribute %q: keys 1-%d bytes, values at most %d bytes", truncate(k, 80), MaxAttrKeyLen, MaxAttrValueLen)
		}
	}
	for i, s := range a.GetSkills() {
		if !routing.ValidSkill(s.GetSkill()) {
			return invalid("skills[%d].skill %q is not a skill name", i, truncate(s.GetSkill(), 80))
		}
		if s.GetMinLevel() < 1 || s.GetMinLevel() > routing.MaxLevel {
			return invalid("skills[%d].min_level %d is out of range; allowed 1..%d", i, s.GetMinLevel(), routing.MaxLevel)
		}
	}
	if ws := a.GetWaitingSince(); ws != nil {
		if err := ws.CheckValid(); err != nil {
			return invalid("waiting_since: %v", err)
		}
		if t := ws.AsTime(); t.Before(now.Add(-MaxWaitCredit)) {
			return invalid("waiting_since %s is more than %v ago", t.Format(time.RFC3339), MaxWaitCredit)
		}
	}
	return nil
}

func validateMedia(carrier, queue, contactID string, ev *pb.MediaEvent) *decodeError {
	if e := checkVersion(ev.GetSchemaVersion(), "MediaEvent"); e != nil {
		return e
	}
	if e := validCarrier(carrier); e != nil {
		return e
	}
	switch {
	case !routing.ValidQueueName(queue):
		return invalid("queue %q in the subject is not a queue name", truncate(queue, 80))
	case !contactIDRE.MatchString(contactID):
		return invalid("contact id %q in the subject is not valid", truncate(contactID, 80))
	case ev.GetContactId() != "" && ev.GetContactId() != contactID:
		return invalid("contact_id %q does not match the subject's %q", truncate(ev.GetContactId(), 80), contactID)
	case ev.GetKind() == pb.MediaKind_MEDIA_KIND_UNSPECIFIED || pb.MediaKind_name[int32(ev.GetKind())] == "":
		return invalid("kind %v is not valid; use MEDIA_KIND_ANSWERED, MEDIA_KIND_HUNG_UP, MEDIA_KIND_HOLD, MEDIA_KIND_RESUME or MEDIA_KIND_DTMF", ev.GetKind())
	case ev.GetKind() == pb.MediaKind_MEDIA_KIND_DTMF && !dtmfRE.MatchString(ev.GetDigits()):
		return invalid("digits %q are not DTMF (0-9, *, #, A-D; 1-32)", truncate(ev.GetDigits(), 40))
	}
	return nil
}

func validateAgentCommand(agentID string, c *pb.AgentCommand) *decodeError {
	if e := checkVersion(c.GetSchemaVersion(), "AgentCommand"); e != nil {
		return e
	}
	k := c.GetKind()
	switch {
	case !routing.ValidAgentID(agentID):
		return invalid("agent id %q in the subject is not valid", truncate(agentID, 80))
	case c.GetAgentId() != "" && c.GetAgentId() != agentID:
		return invalid("agent_id %q does not match the subject's %q", truncate(c.GetAgentId(), 80), agentID)
	case k == pb.AgentCommandKind_AGENT_COMMAND_KIND_UNSPECIFIED || pb.AgentCommandKind_name[int32(k)] == "":
		return invalid("kind %v is not valid", k)
	case c.GetReason() != "" && !reasonRE.MatchString(c.GetReason()):
		return invalid("reason %q is not valid: 1-%d letters, digits, spaces or _.:-", truncate(c.GetReason(), 80), MaxReasonLen)
	}
	switch k {
	case pb.AgentCommandKind_AGENT_COMMAND_KIND_ACCEPT, pb.AgentCommandKind_AGENT_COMMAND_KIND_REJECT, pb.AgentCommandKind_AGENT_COMMAND_KIND_WRAP_UP_DONE:
		if !offerIDRE.MatchString(c.GetOfferId()) {
			return invalid("%v needs offer_id; %q is not an offer id", k, truncate(c.GetOfferId(), 80))
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
