package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"source-stripe/catalog"
	"source-stripe/protocol"
	"source-stripe/spec"
	"source-stripe/streams"
)

// Resource is a binding's resource config: which stream it captures. Other
// fields are ignored, so that resource configs written for Estuary's Airbyte
// adapter ({"stream": ..., "syncMode": ..., "namespace": ...}) still work.
type Resource struct {
	Stream string `json:"stream"`
}

// resourcePathPointers extract a binding's resource path from its resource
// config: the stream name identifies the resource.
var resourcePathPointers = []string{"/stream"}

// collectionKey is every collection's key: Stripe ids are unique per object
// type (catalog.PrimaryKey).
var collectionKey = []string{"/id"}

// Spec answers Spec. It does not look at the request's config, which Flow
// sends empty.
func Spec() (*SpecResponse, error) {
	schema, err := resourceConfigSchema()
	if err != nil {
		return nil, err
	}
	return &SpecResponse{
		Protocol:             ProtocolVersion,
		ConfigSchema:         spec.ConnectionSpecification,
		ResourceConfigSchema: schema,
		DocumentationURL:     spec.DocumentationURL,
		ResourcePathPointers: resourcePathPointers,
	}, nil
}

func resourceConfigSchema() (json.RawMessage, error) {
	return marshal(map[string]any{
		"$schema":  "http://json-schema.org/draft-07/schema#",
		"title":    "Stripe stream",
		"type":     "object",
		"required": []string{"stream"},
		"properties": map[string]any{
			"stream": map[string]any{
				"type":        "string",
				"title":       "Stream",
				"description": "The Stripe stream to capture: it backfills through the list endpoint, then follows Stripe's events.",
				"enum":        catalog.Names(),
			},
		},
	})
}

// Discover answers Discover: a binding per stream of the catalog, keyed by
// id. The config is checked (no request is sent to Stripe: the streams and
// their schemas do not depend on the account).
func Discover(config json.RawMessage) (*Discovered, error) {
	if _, err := spec.Parse(config); err != nil {
		return nil, err
	}
	cat, err := catalog.Discover()
	if err != nil {
		return nil, err
	}
	out := &Discovered{}
	for _, s := range cat.Streams {
		resource, err := marshal(Resource{Stream: s.Name})
		if err != nil {
			return nil, err
		}
		schema, err := documentSchema(s.JSONSchema)
		if err != nil {
			return nil, fmt.Errorf("stream %s: %w", s.Name, err)
		}
		out.Bindings = append(out.Bindings, DiscoveredBinding{
			RecommendedName: s.Name,
			ResourceConfig:  resource,
			DocumentSchema:  schema,
			Key:             collectionKey,
			ResourcePath:    []string{s.Name},
		})
	}
	return out, nil
}

// documentSchema is a stream's json_schema as a Flow collection schema. Flow
// requires a key's location to be required, which Stripe's schemas (which
// drop "required" so that objects Stripe changes later still validate) do
// not say of id. The schema allows additional properties, so the _meta
// that the connector and Flow's runtime add to documents is valid.
func documentSchema(streamSchema json.RawMessage) (json.RawMessage, error) {
	var schema map[string]any
	if err := json.Unmarshal(streamSchema, &schema); err != nil {
		return nil, err
	}
	if ap, ok := schema["additionalProperties"]; ok && ap != true {
		return nil, fmt.Errorf("the schema must allow additional properties (Flow adds _meta), got %v", ap)
	}
	props, _ := schema["properties"].(map[string]any)
	id, _ := props["id"].(map[string]any)
	if id["type"] != "string" {
		return nil, fmt.Errorf("the key /id must have type string, got %v", id["type"])
	}
	schema["required"] = []string{"id"}
	return marshal(schema)
}

// parseResource reads and checks a binding's resource config.
func parseResource(raw json.RawMessage) (Resource, streams.Stream, error) {
	var r Resource
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, streams.Stream{}, protocol.ConfigErrorf("the resource config must be an object like {\"stream\": \"charges\"}: %v", err)
	}
	if r.Stream == "" {
		return r, streams.Stream{}, protocol.ConfigErrorf("the resource config %s names no stream: set \"stream\" to one of %s", raw, strings.Join(catalog.Names(), ", "))
	}
	s, ok := streams.Lookup(r.Stream)
	if !ok {
		return r, streams.Stream{}, protocol.ConfigErrorf("there is no stream %q: set \"stream\" to one of %s", r.Stream, strings.Join(catalog.Names(), ", "))
	}
	return r, s, nil
}

// marshal encodes v without escaping <, > and & (schemas hold them in
// descriptions).
func marshal(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}
