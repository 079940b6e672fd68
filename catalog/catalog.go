// Package catalog owns discovery: the Airbyte catalog built from the streams
// table and the JSON schemas generated from Stripe's OpenAPI description, and
// the checking of the configured catalog that read receives.
package catalog

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/streams"
)

//go:embed schemas/*.json
var schemaFiles embed.FS

// PrimaryKey of every stream: Stripe ids are unique per object type.
var PrimaryKey = [][]string{{"id"}}

var (
	once     sync.Once
	built    *protocol.Catalog
	buildErr error
)

// Discover returns the catalog of every stream.
func Discover() (*protocol.Catalog, error) {
	once.Do(func() { built, buildErr = build() })
	return built, buildErr
}

func build() (*protocol.Catalog, error) {
	cat := &protocol.Catalog{Streams: []protocol.Stream{}}
	for _, s := range streams.Table {
		schema, err := Schema(s)
		if err != nil {
			return nil, err
		}
		entry := protocol.Stream{
			Name:                    s.Name,
			JSONSchema:              schema,
			SupportedSyncModes:      []string{protocol.SyncModeFullRefresh},
			DefaultCursorField:      []string{},
			SourceDefinedPrimaryKey: PrimaryKey,
		}
		if s.Incremental() {
			entry.SupportedSyncModes = append(entry.SupportedSyncModes, protocol.SyncModeIncremental)
			entry.SourceDefinedCursor = true
			entry.DefaultCursorField = []string{s.CursorField()}
			// A read resumes from any checkpoint it emitted.
			entry.IsResumable = true
		}
		cat.Streams = append(cat.Streams, entry)
	}
	return cat, nil
}

// Schema returns the JSON schema of a stream's records: the generated schema
// of the object its endpoint lists, plus the fields the connector adds.
func Schema(s streams.Stream) (json.RawMessage, error) {
	obj, err := ObjectSchema(s)
	if err != nil {
		return nil, err
	}
	props := obj["properties"].(map[string]any)
	if s.AddParentID {
		props[s.ParentIDField] = map[string]any{
			"type":        "string",
			"description": fmt.Sprintf("ID of the %s this object belongs to (added by the connector).", strings.TrimSuffix(s.Parent, "s")),
		}
	}
	if s.ChangeTracked() {
		if !s.OwnUpdated {
			props[streams.UpdatedField] = map[string]any{
				"type":        "integer",
				"description": "Time (epoch seconds) of the change this record reflects: the event's time, or the creation time for records read before any change (added by the connector). Keep the record with the highest value per id.",
			}
		}
		props[streams.DeletedField] = map[string]any{
			"type":        "boolean",
			"description": "True on the last known version of an object deleted in Stripe (added by the connector).",
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// ObjectSchema returns the generated schema of the object a stream lists,
// decoded, as Stripe's OpenAPI description gives it.
func ObjectSchema(s streams.Stream) (map[string]any, error) {
	ep, ok := streams.Endpoints[s.Path]
	if !ok {
		return nil, fmt.Errorf("stream %s: %s is not a list endpoint of Stripe's API %s", s.Name, s.Path, "2023-10-16")
	}
	raw, err := schemaFiles.ReadFile("schemas/" + ep.Object + ".json")
	if err != nil {
		return nil, fmt.Errorf("stream %s: no generated schema for %s: run go generate ./catalog", s.Name, ep.Object)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("stream %s: schema %s: %w", s.Name, ep.Object, err)
	}
	if _, ok := obj["properties"].(map[string]any); !ok {
		return nil, fmt.Errorf("stream %s: schema %s has no properties", s.Name, ep.Object)
	}
	return obj, nil
}

// ParseConfigured reads a configured catalog. Unknown fields are ignored
// (Estuary's adapter adds some); anything the connector cannot honour is a
// config_error that says what to change.
func ParseConfigured(raw []byte) (*protocol.ConfiguredCatalog, error) {
	var doc struct {
		Streams []json.RawMessage `json:"streams"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, protocol.ConfigErrorf("the catalog is not a valid configured catalog: %v", err)
	}
	if doc.Streams == nil {
		return nil, protocol.ConfigErrorf("the catalog has no \"streams\" array")
	}
	if len(doc.Streams) == 0 {
		return nil, protocol.ConfigErrorf("the catalog selects no streams: select at least one")
	}
	cc := &protocol.ConfiguredCatalog{Streams: make([]protocol.ConfiguredStream, len(doc.Streams))}
	for i, raw := range doc.Streams {
		if err := json.Unmarshal(raw, &cc.Streams[i]); err != nil {
			return nil, describeEntry(i, raw, err)
		}
	}
	return cc, nil
}

// describeEntry says which entry and field of the catalog has the wrong
// type, in the catalog's terms rather than Go's.
func describeEntry(i int, raw json.RawMessage, err error) error {
	var typeErr *json.UnmarshalTypeError
	if !errors.As(err, &typeErr) {
		return protocol.ConfigErrorf("the catalog's streams[%d] is malformed: %v", i, err)
	}
	switch field := typeErr.Field; {
	case field == "":
		return protocol.ConfigErrorf(`the catalog's streams[%d] must be an object like {"stream": {"name": "charges"}, "sync_mode": "incremental"}, got %s`, i, typeErr.Value)
	case field == "sync_mode":
		return protocol.ConfigErrorf(`the catalog's streams[%d].sync_mode must be a string ("full_refresh" or "incremental"), got %s`, i, typeErr.Value)
	default:
		return protocol.ConfigErrorf("the catalog's streams[%d].%s must not be %s (want %s)", i, field, typeErr.Value, typeErr.Type)
	}
}

// Default is the catalog a person gets without --catalog: every stream (or
// those named), each in its best sync mode.
func Default(names []string) (*protocol.ConfiguredCatalog, error) {
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := streams.Lookup(n); !ok {
			return nil, protocol.ConfigErrorf("unknown stream %q in --streams; known streams: %s", n, strings.Join(Names(), ", "))
		}
		want[n] = true
	}
	cc := &protocol.ConfiguredCatalog{}
	for _, s := range streams.Table {
		if len(want) > 0 && !want[s.Name] {
			continue
		}
		mode := protocol.SyncModeFullRefresh
		if s.Incremental() {
			mode = protocol.SyncModeIncremental
		}
		cc.Streams = append(cc.Streams, protocol.ConfiguredStream{Stream: protocol.Stream{Name: s.Name}, SyncMode: mode})
	}
	return cc, nil
}

// Narrow keeps the streams of cc that are named (all when names is empty).
func Narrow(cc *protocol.ConfiguredCatalog, names []string) (*protocol.ConfiguredCatalog, error) {
	if len(names) == 0 {
		return cc, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := &protocol.ConfiguredCatalog{}
	for _, cs := range cc.Streams {
		if want[cs.Stream.Name] {
			out.Streams = append(out.Streams, cs)
			delete(want, cs.Stream.Name)
		}
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return nil, protocol.ConfigErrorf("--streams names streams that are not in the catalog: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// Plan turns a configured catalog and the saved states into the jobs to
// read, refusing what cannot be honoured.
func Plan(cc *protocol.ConfiguredCatalog, states state.Set) ([]streams.Job, error) {
	var jobs []streams.Job
	seen := map[string]bool{}
	for i, cs := range cc.Streams {
		name := cs.Stream.Name
		s, ok := streams.Lookup(name)
		if !ok {
			return nil, protocol.ConfigErrorf("the catalog asks for stream %q (entry %d), which this connector does not have; run discover for the list", name, i)
		}
		if seen[name] {
			return nil, protocol.ConfigErrorf("the catalog lists stream %q twice", name)
		}
		seen[name] = true
		job := streams.Job{Stream: s}
		switch cs.SyncMode {
		case protocol.SyncModeFullRefresh:
		case protocol.SyncModeIncremental:
			if !s.Incremental() {
				return nil, protocol.ConfigErrorf("stream %q supports only full_refresh, but the catalog asks for incremental", name)
			}
			if len(cs.CursorField) > 0 && (len(cs.CursorField) != 1 || cs.CursorField[0] != s.CursorField()) {
				return nil, protocol.ConfigErrorf("stream %q has the source-defined cursor [%q], but the catalog asks for %q", name, s.CursorField(), cs.CursorField)
			}
			job.Incremental = true
			job.State = states[name]
		default:
			return nil, protocol.ConfigErrorf("stream %q has sync_mode %q; use full_refresh or incremental", name, cs.SyncMode)
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// Names lists every stream name.
func Names() []string {
	names := make([]string, len(streams.Table))
	for i, s := range streams.Table {
		names[i] = s.Name
	}
	return names
}
