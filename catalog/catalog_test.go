package catalog

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"github.com/stripe/stripe-mock/embedded"

	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/streams"
)

// The hand-kept table must agree with what Stripe's OpenAPI description
// says about each endpoint: otherwise requests fail with 400s in production.
func TestTableAgreesWithOpenAPI(t *testing.T) {
	for _, s := range streams.Table {
		t.Run(s.Name, func(t *testing.T) {
			ep, ok := streams.Endpoints[s.Path]
			if !ok {
				t.Fatalf("%s is not a list endpoint", s.Path)
			}
			accepts := func(p string) bool { return slices.Contains(ep.QueryParams, p) }
			if s.Cursor != "" && !accepts("created") {
				t.Errorf("%s has no created filter", s.Path)
			}
			for p := range s.Params {
				if !accepts(p) {
					t.Errorf("param %q is not accepted by %s", p, s.Path)
				}
			}
			for _, p := range []string{"limit", "starting_after"} {
				if !accepts(p) {
					t.Errorf("%s does not paginate with %q", s.Path, p)
				}
			}
			if obj, err := ObjectSchema(s); err == nil {
				if _, own := obj["properties"].(map[string]any)[streams.UpdatedField]; own != s.OwnUpdated {
					t.Errorf("Stripe's %s has its own %q: %v, but OwnUpdated is %v", ep.Object, streams.UpdatedField, own, s.OwnUpdated)
				}
			}
			if s.Parent == "" {
				if len(ep.PathParams) > 0 || len(ep.Required) > 0 {
					t.Errorf("%s needs a parent id, but the stream has no parent", s.Path)
				}
				return
			}
			parent, ok := streams.Lookup(s.Parent)
			if !ok || parent.Parent != "" {
				t.Fatalf("parent %q must be a top-level stream", s.Parent)
			}
			switch {
			case s.ParentIDParam != "":
				if !slices.Equal(ep.Required, []string{s.ParentIDParam}) {
					t.Errorf("%s requires %v, the stream passes %q", s.Path, ep.Required, s.ParentIDParam)
				}
			case len(ep.PathParams) != 1 || !strings.Contains(s.Path, "{"+ep.PathParams[0]+"}"):
				t.Errorf("%s must hold exactly one {parent} placeholder, has %v", s.Path, ep.PathParams)
			}
			obj, err := ObjectSchema(s)
			if err != nil {
				t.Fatal(err)
			}
			_, stripeHasIt := obj["properties"].(map[string]any)[s.ParentIDField]
			if stripeHasIt == s.AddParentID {
				t.Errorf("Stripe's %s has field %q: %v, but AddParentID is %v", ep.Object, s.ParentIDField, stripeHasIt, s.AddParentID)
			}
			if s.EmbeddedList != "" {
				pobj, err := ObjectSchema(parent)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := pobj["properties"].(map[string]any)[s.EmbeddedList]; !ok {
					t.Errorf("parent %s has no embedded list %q", parent.Name, s.EmbeddedList)
				}
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	cat, err := Discover()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Streams) != 22 {
		t.Errorf("want the 22 core streams, got %d", len(cat.Streams))
	}
	for _, s := range cat.Streams {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft7
		if err := c.AddResource(s.Name, bytes.NewReader(s.JSONSchema)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Compile(s.Name); err != nil {
			t.Errorf("%s: schema does not compile: %v", s.Name, err)
		}
		if bytes.Contains(s.JSONSchema, []byte(`"$ref"`)) {
			t.Errorf("%s: schema has a $ref", s.Name)
		}
		var schema struct {
			Properties map[string]struct {
				Type any `json:"type"`
			} `json:"properties"`
		}
		json.Unmarshal(s.JSONSchema, &schema)
		if _, ok := schema.Properties["id"]; !ok {
			t.Errorf("%s: primary key id is not in the schema", s.Name)
		}
		for _, f := range s.DefaultCursorField {
			if schema.Properties[f].Type == nil {
				t.Errorf("%s: cursor %q is not in the schema", s.Name, f)
			}
		}
	}
	li := findStream(t, cat, "invoice_line_items")
	if !bytes.Contains(li.JSONSchema, []byte(`"invoice_id"`)) || !slices.Equal(li.DefaultCursorField, []string{"updated"}) {
		t.Errorf("invoice_line_items: want an invoice_id field and the updated cursor, got %v", li.DefaultCursorField)
	}
	for name, cursor := range map[string]string{"charges": "updated", "products": "updated", "balance_transactions": "created", "events": "created"} {
		s := findStream(t, cat, name)
		if !s.SourceDefinedCursor || !slices.Equal(s.DefaultCursorField, []string{cursor}) || !s.IsResumable ||
			!slices.Equal(s.SupportedSyncModes, []string{protocol.SyncModeFullRefresh, protocol.SyncModeIncremental}) {
			t.Errorf("%s: want a resumable source-defined %s cursor, got %v %v", name, cursor, s.DefaultCursorField, s.SupportedSyncModes)
		}
	}
}

func findStream(t *testing.T, cat *protocol.Catalog, name string) protocol.Stream {
	for _, s := range cat.Streams {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stream %s", name)
	return protocol.Stream{}
}

func TestPlanRejects(t *testing.T) {
	for _, tc := range []struct{ name, catalog, want string }{
		{"unknown stream", `{"streams":[{"stream":{"name":"nope"},"sync_mode":"full_refresh"}]}`, `stream "nope"`},
		{"bad mode", `{"streams":[{"stream":{"name":"charges"},"sync_mode":"cdc"}]}`, `sync_mode "cdc"`},
		{"other cursor", `{"streams":[{"stream":{"name":"charges"},"sync_mode":"incremental","cursor_field":["created"]}]}`, `source-defined cursor ["updated"]`},
		{"twice", `{"streams":[{"stream":{"name":"charges"},"sync_mode":"incremental"},{"stream":{"name":"charges"},"sync_mode":"incremental"}]}`, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc, err := ParseConfigured([]byte(tc.catalog))
			if err == nil {
				_, err = Plan(cc, state.Set{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
			if protocol.AsError(err).FailureType != protocol.FailureConfig {
				t.Fatalf("want a config_error, got %v", protocol.AsError(err).FailureType)
			}
		})
	}
	for _, bad := range []string{`{`, `[]`, `{"streams":null}`, `{"streams":[1]}`} {
		if _, err := ParseConfigured([]byte(bad)); err == nil {
			t.Errorf("ParseConfigured(%s) accepted it", bad)
		}
	}
}

// TestEventTypes holds the table's event types to Stripe's OpenAPI
// description: every type exists, and every change-tracked top-level stream
// can retrieve an object by id (which events need when their payload is
// rendered at another API version).
func TestEventTypes(t *testing.T) {
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(embedded.OpenAPISpec, &spec); err != nil {
		t.Fatal(err)
	}
	var webhook struct {
		RequestBody struct {
			Content map[string]struct {
				Schema struct {
					Properties struct {
						EnabledEvents struct {
							Items struct{ Enum []string } `json:"items"`
						} `json:"enabled_events"`
					} `json:"properties"`
				} `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
	}
	json.Unmarshal(spec.Paths["/v1/webhook_endpoints"]["post"], &webhook)
	known := webhook.RequestBody.Content["application/x-www-form-urlencoded"].Schema.Properties.EnabledEvents.Items.Enum
	if len(known) < 200 {
		t.Fatalf("found %d event types in the spec; the lookup is broken", len(known))
	}
	for _, s := range streams.Table {
		for _, typ := range s.Events {
			if !slices.Contains(known, typ) {
				t.Errorf("%s: event type %q does not exist in API 2023-10-16", s.Name, typ)
			}
		}
		if s.ChangeTracked() && s.Parent == "" {
			if _, ok := spec.Paths[s.Path+"/{"+retrieveParam(spec.Paths, s.Path)+"}"]["get"]; !ok {
				t.Errorf("%s: no GET %s/{id} to fetch changed objects", s.Name, s.Path)
			}
		}
	}
}

// retrieveParam finds the name of the id placeholder of path's retrieve
// endpoint (/v1/charges/{charge}).
func retrieveParam(paths map[string]map[string]json.RawMessage, path string) string {
	for p := range paths {
		if rest, ok := strings.CutPrefix(p, path+"/{"); ok && strings.HasSuffix(rest, "}") && !strings.Contains(rest, "/") {
			return strings.TrimSuffix(rest, "}")
		}
	}
	return ""
}

func TestPlanIgnoresEstuaryFields(t *testing.T) {
	cc, err := ParseConfigured([]byte(`{"streams":[{"stream":{"name":"charges","json_schema":{}},"sync_mode":"incremental","destination_sync_mode":"append",
		"estuary.dev/range":{"keyBegin":0,"keyEnd":4294967295},"estuary.dev/projections":{"id":"/id"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	created := int64(1700000000)
	jobs, err := Plan(cc, state.Set{"charges": {Version: 1, Created: &created}})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || !jobs[0].Incremental || *jobs[0].State.Created != created {
		t.Fatalf("got %+v", jobs)
	}
}
