package catalog

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

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
			if s.Incremental() && !accepts("created") {
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
	if !bytes.Contains(li.JSONSchema, []byte(`"invoice_id"`)) || slices.Contains(li.SupportedSyncModes, protocol.SyncModeIncremental) {
		t.Errorf("invoice_line_items: want full_refresh with an invoice_id field, got %v", li.SupportedSyncModes)
	}
	ch := findStream(t, cat, "charges")
	if !ch.SourceDefinedCursor || !slices.Equal(ch.DefaultCursorField, []string{"created"}) || !ch.IsResumable {
		t.Errorf("charges: want a resumable source-defined created cursor, got %+v", ch)
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
		{"incremental child", `{"streams":[{"stream":{"name":"invoice_line_items"},"sync_mode":"incremental"}]}`, "supports only full_refresh"},
		{"bad mode", `{"streams":[{"stream":{"name":"charges"},"sync_mode":"cdc"}]}`, `sync_mode "cdc"`},
		{"other cursor", `{"streams":[{"stream":{"name":"charges"},"sync_mode":"incremental","cursor_field":["amount"]}]}`, "source-defined cursor"},
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
