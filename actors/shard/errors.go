package shard

import (
	"errors"
	"fmt"

	pb "github.com/tsunagu/tsunagu/proto/routingv1"
)

// Error is a refusal with a stable code. Errors with the same code match
// under errors.Is, so callers can test against the sentinels below.
type Error struct {
	Code pb.ErrorCode
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

var (
	// ErrUnknownContact: no contact with that id in this shard.
	ErrUnknownContact = &Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_CONTACT, Msg: "shard: unknown contact"}
	// ErrUnknownAgent: no agent with that id is configured (the engine's
	// answer; the state machine says ErrIllegalTransition for an agent that
	// is not logged in).
	ErrUnknownAgent = &Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_AGENT, Msg: "shard: unknown agent"}
	// ErrUnknownOffer: the agent holds no slot with that offer id.
	ErrUnknownOffer = &Error{Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_OFFER, Msg: "shard: unknown offer"}
	// ErrIllegalTransition: the command is not allowed in the current state.
	ErrIllegalTransition = &Error{Code: pb.ErrorCode_ERROR_CODE_ILLEGAL_TRANSITION, Msg: "shard: illegal transition"}
	// ErrInvalidCommand: the command is malformed (missing ids, unknown kind).
	ErrInvalidCommand = &Error{Code: pb.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, Msg: "shard: invalid command"}
	// ErrUnsupportedVersion: the command's schema version is not known here.
	ErrUnsupportedVersion = &Error{Code: pb.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION, Msg: "shard: unsupported command version"}
	// ErrConflict: a contact with this id exists with different contents.
	ErrConflict = &Error{Code: pb.ErrorCode_ERROR_CODE_CONFLICT, Msg: "shard: conflict"}
)

func errorf(base *Error, format string, args ...any) *Error {
	return &Error{Code: base.Code, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf returns the stable code of err: the code of the first *Error in its
// chain, or INTERNAL.
func CodeOf(err error) pb.ErrorCode {
	if err == nil {
		return pb.ErrorCode_ERROR_CODE_UNSPECIFIED
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return pb.ErrorCode_ERROR_CODE_INTERNAL
}

// Undecided reports whether err says a command's fate is unknown: the log
// could not commit it now (the leader stepped down, the log closed), yet a
// later leader may still commit it. Callers must not act as if it failed;
// whoever asked retries, and idempotent commands make that safe.
func Undecided(err error) bool {
	return CodeOf(err) == pb.ErrorCode_ERROR_CODE_UNAVAILABLE
}
