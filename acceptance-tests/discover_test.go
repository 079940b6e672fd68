package acceptance

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"source-stripe/protocol"
)

// propertyAt returns the schema of the field at path, following
// "properties" from the stream's root schema.
func propertyAt(schema map[string]any, path []string) (map[string]any, bool) {
	cur := schema
	for _, p := range path {
		props, _ := cur["properties"].(map[string]any)
		next, ok := props[p].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = next
	}
	return cur, true
}

// schemaTypes lists a schema's "type", a string or an array of them.
func schemaTypes(schema map[string]any) []string {
	switch t := schema["type"].(type) {
	case string:
		return []string{t}
	case []any:
		var out []string
		for _, v := range t {
			s, _ := v.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

func TestDiscover(t *testing.T) {
	t.Parallel()
	p := offlinePeer(t)
	res := p.run("discover", "--config", p.config(nil))
	requireExit(t, res, 0)
	cats := res.Of(protocol.TypeCatalog)
	if len(cats) != 1 {
		t.Fatalf("want exactly one CATALOG, got %d", len(cats))
	}
	cat := cats[0].Catalog
	if len(cat.Streams) == 0 {
		t.Fatal("the catalog has no streams")
	}
	schemas := map[string]map[string]any{}
	for _, s := range cat.Streams {
		var m map[string]any
		if err := json.Unmarshal(s.JSONSchema, &m); err != nil {
			t.Fatalf("stream %s: json_schema is not an object: %v", s.Name, err)
		}
		schemas[s.Name] = m
	}

	t.Run("stream names are unique", func(t *testing.T) {
		seen := map[string]bool{}
		for _, s := range cat.Streams {
			if s.Name == "" || seen[s.Name] {
				t.Errorf("stream name %q is empty or repeated", s.Name)
			}
			seen[s.Name] = true
		}
	})

	t.Run("schemas are Draft 7", func(t *testing.T) {
		for _, s := range cat.Streams {
			if _, err := compileDraft7(s.Name, s.JSONSchema); err != nil {
				t.Errorf("stream %s: json_schema is not a valid Draft-7 schema: %v", s.Name, err)
			}
			if got := schemas[s.Name]["$schema"]; got != nil && got != draft7 {
				t.Errorf("stream %s: $schema %v", s.Name, got)
			}
		}
	})

	t.Run("no $ref allOf not", func(t *testing.T) {
		for _, s := range cat.Streams {
			schemaKeywords(schemas[s.Name], "", func(keyword, at string, _ any) {
				switch keyword {
				case "$ref", "allOf", "not":
					t.Errorf("stream %s: %s at %s/", s.Name, keyword, at)
				}
			})
		}
	})

	t.Run("additionalProperties is true where set", func(t *testing.T) {
		// CAT: a false or restrictive additionalProperties makes records fail
		// validation as soon as Stripe adds a field or a value shape.
		var bad []string
		for _, s := range cat.Streams {
			schemaKeywords(schemas[s.Name], "", func(keyword, at string, value any) {
				if keyword == "additionalProperties" && value != true {
					raw, _ := json.Marshal(value)
					bad = append(bad, fmt.Sprintf("%s %s/ is %s", s.Name, at, raw))
				}
			})
		}
		if len(bad) > 0 {
			sort.Strings(bad)
			t.Errorf("additionalProperties is set to something other than true at %d places: %s", len(bad), firstLines(bad, 4))
		}
	})

	t.Run("sync modes and cursors", func(t *testing.T) {
		for _, s := range cat.Streams {
			modes := s.SupportedSyncModes
			if len(modes) == 0 || !slices.Contains(modes, protocol.SyncModeFullRefresh) {
				t.Errorf("stream %s: supported_sync_modes %v", s.Name, modes)
			}
			for _, m := range modes {
				if m != protocol.SyncModeFullRefresh && m != protocol.SyncModeIncremental {
					t.Errorf("stream %s: unknown sync mode %q", s.Name, m)
				}
			}
			incremental := slices.Contains(modes, protocol.SyncModeIncremental)
			if incremental != (len(s.DefaultCursorField) > 0) || incremental != s.SourceDefinedCursor {
				t.Errorf("stream %s: incremental %v, but default_cursor_field %v and source_defined_cursor %v", s.Name, incremental, s.DefaultCursorField, s.SourceDefinedCursor)
			}
			if len(s.DefaultCursorField) > 0 {
				if _, ok := propertyAt(schemas[s.Name], s.DefaultCursorField); !ok {
					t.Errorf("stream %s: cursor %v is not a property of its schema", s.Name, s.DefaultCursorField)
				}
			}
		}
	})

	t.Run("primary keys exist and are scalars", func(t *testing.T) {
		for _, s := range cat.Streams {
			if len(s.SourceDefinedPrimaryKey) == 0 {
				t.Errorf("stream %s: no source_defined_primary_key", s.Name)
			}
			for _, path := range s.SourceDefinedPrimaryKey {
				field, ok := propertyAt(schemas[s.Name], path)
				if !ok {
					t.Errorf("stream %s: primary key %v is not a property of its schema", s.Name, path)
					continue
				}
				types := schemaTypes(field)
				scalar := slices.Contains(types, "string") || slices.Contains(types, "integer")
				if !scalar || slices.Contains(types, "object") || slices.Contains(types, "array") {
					t.Errorf("stream %s: primary key %v has type %v; want string or integer", s.Name, path, types)
				}
			}
		}
	})

	t.Run("streams match the golden file", func(t *testing.T) {
		var b strings.Builder
		for _, s := range cat.Streams {
			fmt.Fprintf(&b, "%s %s", s.Name, strings.Join(s.SupportedSyncModes, ","))
			if len(s.DefaultCursorField) > 0 {
				fmt.Fprintf(&b, " cursor=%s", strings.Join(s.DefaultCursorField, "."))
			}
			b.WriteByte('\n')
		}
		compareGolden(t, "streams.golden.txt", []byte(b.String()))
	})
}
