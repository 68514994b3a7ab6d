package gateway

import (
	"fmt"
	"strings"

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

// encodingOf reads the Content-Type header; anything but JSON is protobuf.
func encodingOf(h nats.Header) Encoding {
	if h == nil {
		return Protobuf
	}
	ct := strings.ToLower(h.Get(HeaderContentType))
	if strings.HasPrefix(ct, ContentJSON) || strings.HasSuffix(ct, "+json") {
		return JSON
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
	return &decodeError{code: code, msg: fmt.Sprintf(format, args...)}
}

// decode parses data into m after the size check. what names the message
// for error texts.
func decode(data []byte, enc Encoding, limit int, what string, m proto.Message) *decodeError {
	if len(data) > limit {
		return refuse(pb.ErrorCode_ERROR_CODE_TOO_LARGE, "%s is %d bytes; at most %d allowed", what, len(data), limit)
	}
	var err error
	if enc == JSON {
		err = jsonIn.Unmarshal(data, m)
	} else {
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
