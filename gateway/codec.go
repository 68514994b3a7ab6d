package gateway

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	pb "github.com/tsunagu/tsunagu/proto/routingv1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Encoding of a payload.
type Encoding int

const (
	// Protobuf is the binary wire format, the default.
	Protobuf Encoding = iota
	// JSON is protojson, for humans and scripts.
	JSON
)

// encodingOf reads the Content-Type header (its name in any case). Without
// one, a payload whose first non-blank byte is '{' is JSON — no message of
// this contract starts that way in protobuf (it would be field 15 as a
// group) — and anything else is protobuf.
func encodingOf(h nats.Header, data []byte) Encoding {
	for k, v := range h {
		if !strings.EqualFold(k, HeaderContentType) || len(v) == 0 {
			continue
		}
		ct := strings.ToLower(v[0])
		if strings.HasPrefix(ct, ContentJSON) || strings.Contains(ct, "+json") {
			return JSON
		}
		return Protobuf
	}
	for _, b := range data {
		if b == ' ' || b == '\t' || b == '\r' || b == '\n' {
			continue
		}
		if b == '{' {
			return JSON
		}
		break
	}
	return Protobuf
}

var (
	jsonIn  = protojson.UnmarshalOptions{}
	jsonOut = protojson.MarshalOptions{UseProtoNames: true}
)

// decodeError is a refusal of an incoming payload with a stable code.
type decodeError struct {
	code pb.ErrorCode
	msg  string
}

func (e *decodeError) Error() string { return e.msg }

func (e *decodeError) proto() *pb.Error { return &pb.Error{Code: e.code, Message: e.msg} }

func refuse(code pb.ErrorCode, format string, args ...any) *decodeError {
	return &decodeError{code: code, msg: clean(fmt.Sprintf(format, args...), maxMessage)}
}

// maxMessage bounds an error message; maxEcho bounds what of the caller's
// own input is echoed in a reply.
const (
	maxMessage = 1024
	maxEcho    = 160
)

// clean makes s safe to put in a reply: valid UTF-8 (protobuf refuses to
// encode anything else, and the caller would get no reply at all) and at
// most n bytes.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// decode parses data into m after the size check. what names the message
// for error texts.
func decode(data []byte, enc Encoding, limit int, what string, m proto.Message) *decodeError {
	if len(data) > limit {
		return refuse(pb.ErrorCode_ERROR_CODE_TOO_LARGE, "%s is %d bytes; at most %d allowed", what, len(data), limit)
	}
	var err error
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		// An empty payload is the empty message in either encoding.
	case enc == JSON:
		err = jsonIn.Unmarshal(data, m)
	default:
		err = proto.Unmarshal(data, m)
	}
	if err != nil {
		kind := "protobuf"
		if enc == JSON {
			kind = "JSON"
		}
		return refuse(pb.ErrorCode_ERROR_CODE_MALFORMED, "%s is not valid %s: %v", what, kind, err)
	}
	return nil
}

func encode(m proto.Message, enc Encoding) ([]byte, error) {
	if enc == JSON {
		return jsonOut.Marshal(m)
	}
	return proto.Marshal(m)
}

// header marks JSON payloads; protobuf, the default, goes without a
// header: parsing headers on every message costs more than the payload.
func header(enc Encoding) nats.Header {
	if enc == JSON {
		return nats.Header{HeaderContentType: []string{ContentJSON}}
	}
	return nil
}

// checkVersion accepts schema versions 0 (unset) and 1.
func checkVersion(v uint32, what string) *decodeError {
	if v > 1 {
		return refuse(pb.ErrorCode_ERROR_CODE_UNSUPPORTED_VERSION, "%s has schema_version %d; this node speaks 1", what, v)
	}
	return nil
}
