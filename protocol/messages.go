// Package protocol owns the Airbyte protocol's message types and the single
// writer that puts them on stdout, one JSON object per line.
package protocol

import "encoding/json"

// Type is an Airbyte message type.
type Type string

const (
	TypeRecord           Type = "RECORD"
	TypeState            Type = "STATE"
	TypeLog              Type = "LOG"
	TypeSpec             Type = "SPEC"
	TypeConnectionStatus Type = "CONNECTION_STATUS"
	TypeCatalog          Type = "CATALOG"
	TypeTrace            Type = "TRACE"
)

// Message is one line of Airbyte output. Exactly one payload field is set.
type Message struct {
	Type             Type              `json:"type"`
	Log              *Log              `json:"log,omitempty"`
	Spec             *Spec             `json:"spec,omitempty"`
	ConnectionStatus *ConnectionStatus `json:"connectionStatus,omitempty"`
	Catalog          *Catalog          `json:"catalog,omitempty"`
	Record           *Record           `json:"record,omitempty"`
	State            *State            `json:"state,omitempty"`
	Trace            *Trace            `json:"trace,omitempty"`
}

// Log levels.
const (
	LevelDebug = "DEBUG"
	LevelInfo  = "INFO"
	LevelWarn  = "WARN"
	LevelError = "ERROR"
)

// Log is a LOG message: something for a person, shown in the platform's logs.
type Log struct {
	Level   string `json:"level"`
	Message string `json:"message"`
}

// Spec is the SPEC message's payload.
type Spec struct {
	DocumentationURL              string          `json:"documentationUrl,omitempty"`
	ConnectionSpecification       json.RawMessage `json:"connectionSpecification"`
	SupportsIncremental           bool            `json:"supportsIncremental"`
	SupportedDestinationSyncModes []string        `json:"supported_destination_sync_modes,omitempty"`
}

// Connection statuses.
const (
	StatusSucceeded = "SUCCEEDED"
	StatusFailed    = "FAILED"
)

// ConnectionStatus is the answer to check.
type ConnectionStatus struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Sync modes.
const (
	SyncModeFullRefresh = "full_refresh"
	SyncModeIncremental = "incremental"
)

// Catalog is what discover prints.
type Catalog struct {
	Streams []Stream `json:"streams"`
}

// Stream describes one stream in a Catalog.
type Stream struct {
	Name                    string          `json:"name"`
	JSONSchema              json.RawMessage `json:"json_schema"`
	SupportedSyncModes      []string        `json:"supported_sync_modes"`
	SourceDefinedCursor     bool            `json:"source_defined_cursor"`
	DefaultCursorField      []string        `json:"default_cursor_field"`
	SourceDefinedPrimaryKey [][]string      `json:"source_defined_primary_key"`
	IsResumable             bool            `json:"is_resumable"`
	Namespace               string          `json:"namespace,omitempty"`
}

// ConfiguredCatalog is what read receives. Unknown fields (Estuary's adapter
// adds estuary.dev/range and estuary.dev/projections) are ignored.
type ConfiguredCatalog struct {
	Streams []ConfiguredStream `json:"streams"`
}

// ConfiguredStream is one stream the platform asks to read.
type ConfiguredStream struct {
	Stream              Stream     `json:"stream"`
	SyncMode            string     `json:"sync_mode"`
	DestinationSyncMode string     `json:"destination_sync_mode,omitempty"`
	CursorField         []string   `json:"cursor_field,omitempty"`
	PrimaryKey          [][]string `json:"primary_key,omitempty"`
}

// Record is a RECORD message's payload.
type Record struct {
	Stream    string          `json:"stream"`
	Data      json.RawMessage `json:"data"`
	EmittedAt int64           `json:"emitted_at"`
}

// State types.
const (
	StateTypeStream = "STREAM"
	StateTypeGlobal = "GLOBAL"
	StateTypeLegacy = "LEGACY"
)

// State is a STATE message's payload. The connector only writes STREAM state;
// it reads LEGACY state too, because older platforms and Estuary's adapter
// send it.
type State struct {
	Type        string          `json:"type,omitempty"`
	Stream      *StreamState    `json:"stream,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
	SourceStats *StateStats     `json:"sourceStats,omitempty"`
}

// StreamState is one stream's checkpoint.
type StreamState struct {
	StreamDescriptor StreamDescriptor `json:"stream_descriptor"`
	StreamState      json.RawMessage  `json:"stream_state,omitempty"`
}

// StreamDescriptor names a stream.
type StreamDescriptor struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// StateStats counts the records a STATE message covers.
type StateStats struct {
	RecordCount float64 `json:"recordCount"`
}

// Trace types.
const (
	TraceError        = "ERROR"
	TraceStreamStatus = "STREAM_STATUS"
)

// Trace is a TRACE message's payload.
type Trace struct {
	Type         string        `json:"type"`
	EmittedAt    float64       `json:"emitted_at"`
	Error        *TraceErr     `json:"error,omitempty"`
	StreamStatus *StreamStatus `json:"stream_status,omitempty"`
}

// Failure types tell the platform whose problem an error is.
const (
	FailureConfig    = "config_error"
	FailureSystem    = "system_error"
	FailureTransient = "transient_error"
)

// TraceErr is the payload of a TRACE ERROR.
type TraceErr struct {
	Message          string            `json:"message"`
	InternalMessage  string            `json:"internal_message,omitempty"`
	FailureType      string            `json:"failure_type"`
	StreamDescriptor *StreamDescriptor `json:"stream_descriptor,omitempty"`
}

// Stream statuses.
const (
	StreamStarted    = "STARTED"
	StreamRunning    = "RUNNING"
	StreamComplete   = "COMPLETE"
	StreamIncomplete = "INCOMPLETE"
)

// StreamStatus is the payload of a TRACE STREAM_STATUS.
type StreamStatus struct {
	StreamDescriptor StreamDescriptor `json:"stream_descriptor"`
	Status           string           `json:"status"`
	Reasons          []StatusReason   `json:"reasons,omitempty"`
}

// StatusReason explains a status, e.g. that a stream waits on rate limits.
type StatusReason struct {
	Type        string       `json:"type"`
	RateLimited *RateLimited `json:"rate_limited,omitempty"`
}

// RateLimited says when a rate limit is expected to lift.
type RateLimited struct {
	QuotaReset int64 `json:"quota_reset,omitempty"`
}
