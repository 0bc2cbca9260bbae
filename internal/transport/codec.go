package transport

import (
	"encoding"
	"encoding/json"
	"fmt"
)

// MaxMessage bounds one control message; larger payloads go over Bulk streams.
const MaxMessage = 4 << 20

// jsonCodec is the gRPC codec for control messages. It is forced on both
// ends (grpc.ForceServerCodec, grpc.ForceCodec), so no global registration.
type jsonCodec struct{}

func (jsonCodec) Name() string { return "ssijson" }

// Marshal encodes v as JSON, or with its own binary encoding if it has
// one (the frames of streams).
func (jsonCodec) Marshal(v any) ([]byte, error) {
	if m, ok := v.(encoding.BinaryMarshaler); ok {
		return m.MarshalBinary()
	}
	return json.Marshal(v)
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if r, ok := v.(*rawMessage); ok {
		// The server decodes requests itself (service.go), so that a
		// malformed one is answered InvalidArgument.
		*r = append((*r)[:0], data...)
		return nil
	}
	if len(data) > MaxMessage {
		return fmt.Errorf("message of %d bytes exceeds the %d byte limit", len(data), MaxMessage)
	}
	if u, ok := v.(encoding.BinaryUnmarshaler); ok {
		// gRPC may reuse data once we return: the message gets a copy.
		return u.UnmarshalBinary(append([]byte(nil), data...))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}

// rawMessage is a request's undecoded bytes.
type rawMessage []byte

// decodeRequest decodes a request received by the server.
func decodeRequest(data []byte, v any) error { return jsonCodec{}.Unmarshal(data, v) }
