package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// ProtocolVersion is the capture protocol Flow's runtime requires in the
// Spec response.
const ProtocolVersion = 3032023

// Request is one line the runtime sends on stdin: exactly one field is set.
// Only the fields the connector uses are declared; the rest (the collection
// specs, shard templates, "$internal") are ignored, so that fields the
// runtime adds later do not break the connector.
type Request struct {
	Spec        *SpecRequest     `json:"spec,omitempty"`
	Discover    *SpecRequest     `json:"discover,omitempty"` // same shape: connectorType, config
	Validate    *ValidateRequest `json:"validate,omitempty"`
	Apply       *ApplyRequest    `json:"apply,omitempty"`
	Open        *OpenRequest     `json:"open,omitempty"`
	Acknowledge *Acknowledge     `json:"acknowledge,omitempty"`
}

// SpecRequest asks for the connector's schemas (Spec) or its resources
// (Discover). Flow sends Spec with an empty config ({}): nothing may depend
// on it.
type SpecRequest struct {
	ConnectorType json.RawMessage `json:"connectorType,omitempty"` // "IMAGE"; unused
	Config        json.RawMessage `json:"config,omitempty"`
}

// ValidateRequest checks a config and proposed bindings.
type ValidateRequest struct {
	Name     string            `json:"name,omitempty"`
	Config   json.RawMessage   `json:"config,omitempty"`
	Bindings []ValidateBinding `json:"bindings,omitempty"`
}

// ValidateBinding is a proposed binding.
type ValidateBinding struct {
	ResourceConfig json.RawMessage `json:"resourceConfig,omitempty"`
	Backfill       Uint32          `json:"backfill,omitempty"`
}

// ApplyRequest tells the connector a capture was published. The connector
// has nothing to set up in Stripe.
type ApplyRequest struct {
	Capture *CaptureSpec `json:"capture,omitempty"`
	Version string       `json:"version,omitempty"`
}

// OpenRequest starts a capture.
type OpenRequest struct {
	Capture CaptureSpec `json:"capture"`
	Version string      `json:"version,omitempty"`
	// Range is this shard's share of the capture; nil means all of it.
	Range *RangeSpec `json:"range,omitempty"`
	// State is the merged connector state of earlier checkpoints, keyed by
	// binding stateKey.
	State json.RawMessage `json:"state,omitempty"`
}

// CaptureSpec is the published capture.
type CaptureSpec struct {
	Name     string          `json:"name,omitempty"`
	Config   json.RawMessage `json:"config,omitempty"`
	Bindings []Binding       `json:"bindings,omitempty"`
}

// Binding is one stream bound to a collection. Its position in
// CaptureSpec.Bindings is the index Captured documents name.
type Binding struct {
	ResourceConfig json.RawMessage `json:"resourceConfig,omitempty"`
	ResourcePath   []string        `json:"resourcePath,omitempty"`
	Backfill       Uint32          `json:"backfill,omitempty"`
	// StateKey keys the binding's state; Flow changes it when the binding
	// is backfilled again, so a new key means a fresh backfill.
	StateKey   string `json:"stateKey,omitempty"`
	Collection struct {
		Name string `json:"name,omitempty"`
	} `json:"collection"`
}

// RangeSpec is the share of the capture's key space a shard owns: the
// inclusive range [KeyBegin, KeyEnd] of 32-bit keys. Zero values are left
// out of the JSON, so the first shard's range has no keyBegin.
type RangeSpec struct {
	KeyBegin    Uint32 `json:"keyBegin,omitempty"`
	KeyEnd      Uint32 `json:"keyEnd,omitempty"`
	RClockBegin Uint32 `json:"rClockBegin,omitempty"`
	RClockEnd   Uint32 `json:"rClockEnd,omitempty"`
}

// Acknowledge says the runtime committed checkpoints. It is only sent when
// Opened asks for explicit acknowledgements, which this connector does not.
type Acknowledge struct {
	Checkpoints Uint32 `json:"checkpoints,omitempty"`
}

// Response is one line the connector writes on stdout: exactly one field is
// set. Captured documents are written by writeCaptured, without this type,
// to pass each document through byte for byte.
type Response struct {
	Spec       *SpecResponse `json:"spec,omitempty"`
	Discovered *Discovered   `json:"discovered,omitempty"`
	Validated  *Validated    `json:"validated,omitempty"`
	Applied    *Applied      `json:"applied,omitempty"`
	Opened     *Opened       `json:"opened,omitempty"`
	Checkpoint *Checkpoint   `json:"checkpoint,omitempty"`
}

// SpecResponse describes the connector.
type SpecResponse struct {
	Protocol             uint32          `json:"protocol"`
	ConfigSchema         json.RawMessage `json:"configSchema"`
	ResourceConfigSchema json.RawMessage `json:"resourceConfigSchema"`
	DocumentationURL     string          `json:"documentationUrl"`
	ResourcePathPointers []string        `json:"resourcePathPointers"`
}

// Discovered lists a binding per stream.
type Discovered struct {
	Bindings []DiscoveredBinding `json:"bindings"`
}

// DiscoveredBinding proposes a binding of one stream.
type DiscoveredBinding struct {
	RecommendedName string          `json:"recommendedName"`
	ResourceConfig  json.RawMessage `json:"resourceConfig"`
	DocumentSchema  json.RawMessage `json:"documentSchema"`
	Key             []string        `json:"key"`
	ResourcePath    []string        `json:"resourcePath"`
}

// Validated answers Validate, a binding for each binding of the request.
type Validated struct {
	Bindings []ValidatedBinding `json:"bindings,omitempty"`
}

// ValidatedBinding names the resource a binding captures.
type ValidatedBinding struct {
	ResourcePath []string `json:"resourcePath"`
}

// Applied answers Apply; an empty description means nothing was done.
type Applied struct {
	ActionDescription string `json:"actionDescription,omitempty"`
}

// Opened answers Open.
type Opened struct {
	ExplicitAcknowledgements bool `json:"explicitAcknowledgements,omitempty"`
}

// Checkpoint commits every document written before it, with a patch of the
// connector state.
type Checkpoint struct {
	State ConnectorState `json:"state"`
}

// ConnectorState is a state update; with MergePatch it is merged into the
// previous state as an RFC 7396 merge patch.
type ConnectorState struct {
	Updated    json.RawMessage `json:"updated"`
	MergePatch bool            `json:"mergePatch,omitempty"`
}

// Uint32 is a protobuf uint32 or fixed32 in JSON: a number, or (as protobuf's
// JSON mapping allows) a string holding one.
type Uint32 uint32

// UnmarshalJSON accepts 7 and "7".
func (u *Uint32) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	if string(b) == "null" {
		*u = 0
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		return fmt.Errorf("want an unsigned 32-bit integer, got %s", b)
	}
	*u = Uint32(n)
	return nil
}
