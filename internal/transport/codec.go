package transport

import (
	"encoding/json"
	"fmt"
)

// MaxMessage bounds one control message; larger payloads go over Bulk streams.
const MaxMessage = 4 << 20

// jsonCodec is the gRPC codec for control messages. It is forced on both
// ends (grpc.ForceServerCodec, grpc.ForceCodec), so no global registration.
type jsonCodec struct{}

func (jsonCodec) Name() string { return "ssijson" }

func (jsonCodec) Marshal(v any) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if len(data) > MaxMessage {
		return fmt.Errorf("message of %d bytes exceeds the %d byte limit", len(data), MaxMessage)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("malformed message: %w", err)
	}
	return nil
}
