package main

import (
	"encoding/json"
	"reflect"
	"testing"
)

// components shared by the conversion cases.
const testComponents = `{
	"address": {
		"type": "object",
		"title": "Address",
		"required": ["city"],
		"x-resourceId": "address",
		"properties": {
			"city": {"type": "string", "maxLength": 5000, "nullable": true, "description": "City."},
			"line1": {"type": "string", "maxLength": 5000}
		}
	},
	"card": {
		"type": "object",
		"properties": {
			"id": {"type": "string"},
			"brand": {"type": "string", "enum": ["visa", "amex"]},
			"status": {"type": "string", "nullable": true},
			"checks": {"type": "object", "properties": {"cvc": {"type": "string"}}},
			"networks": {"type": "array", "items": {"type": "string"}}
		}
	},
	"bank_account": {
		"type": "object",
		"properties": {
			"id": {"type": "string"},
			"status": {"type": "string"},
			"checks": {"type": "object", "properties": {"routing": {"type": "boolean"}}},
			"networks": {"type": "array", "items": {"type": "integer"}}
		}
	},
	"free": {"type": "object"},
	"node": {
		"type": "object",
		"properties": {
			"parent": {"anyOf": [{"$ref": "#/components/schemas/node"}], "nullable": true},
			"children": {"type": "array", "items": {"$ref": "#/components/schemas/leaf"}}
		}
	},
	"leaf": {
		"type": "object",
		"properties": {
			"owner": {"$ref": "#/components/schemas/node"},
			"name": {"type": "string"}
		}
	}
}`

func TestConvert(t *testing.T) {
	tests := []struct {
		name   string
		schema string
		want   string
	}{
		{
			name:   "scalar drops enum, maxLength, format, title and x- keys",
			schema: `{"type": "string", "maxLength": 5000, "enum": ["a"], "format": "decimal", "title": "T", "x-stripeBypassValidation": true, "pattern": "^a"}`,
			want:   `{"type": "string"}`,
		},
		{
			name:   "nullable adds null",
			schema: `{"type": "integer", "format": "unix-time", "nullable": true}`,
			want:   `{"type": ["integer", "null"]}`,
		},
		{
			name:   "object drops required and nested descriptions",
			schema: `{"type": "object", "required": ["a"], "description": "D", "properties": {"a": {"type": "boolean", "description": "A"}}}`,
			want:   `{"type": "object", "properties": {"a": {"type": "boolean"}}}`,
		},
		{
			name:   "object without properties",
			schema: `{"type": "object", "properties": {}}`,
			want:   `{"type": "object"}`,
		},
		{
			name:   "string maps allow any value",
			schema: `{"type": "object", "additionalProperties": {"type": "string", "maxLength": 500}}`,
			want:   `{"type": "object"}`,
		},
		{
			name:   "other maps allow any value",
			schema: `{"type": "object", "additionalProperties": {"type": "integer"}}`,
			want:   `{"type": "object"}`,
		},
		{
			name:   "array of a ref inlines the items",
			schema: `{"type": "array", "items": {"$ref": "#/components/schemas/address"}}`,
			want:   `{"type": "array", "items": {"type": "object", "properties": {"city": {"type": ["string", "null"]}, "line1": {"type": "string"}}}}`,
		},
		{
			name:   "expandable field is an id or an object, not inlined",
			schema: `{"anyOf": [{"type": "string", "maxLength": 5000}, {"$ref": "#/components/schemas/card"}], "nullable": true, "x-expansionResources": {"oneOf": [{"$ref": "#/components/schemas/card"}]}}`,
			want:   `{"type": ["string", "object", "null"]}`,
		},
		{
			name:   "single-branch anyOf unwraps the ref",
			schema: `{"anyOf": [{"$ref": "#/components/schemas/free"}], "nullable": true, "description": "D"}`,
			want:   `{"type": ["object", "null"]}`,
		},
		{
			name:   "anyOf of refs merges properties, types, nested objects and items",
			schema: `{"anyOf": [{"$ref": "#/components/schemas/bank_account"}, {"$ref": "#/components/schemas/card"}], "title": "Polymorphic"}`,
			want: `{"type": "object", "properties": {
				"id": {"type": "string"},
				"brand": {"type": "string"},
				"status": {"type": ["string", "null"]},
				"checks": {"type": "object", "properties": {"cvc": {"type": "string"}, "routing": {"type": "boolean"}}},
				"networks": {"type": "array", "items": {"type": ["string", "integer"]}}
			}}`,
		},
		{
			name:   "oneOf merges like anyOf",
			schema: `{"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}`,
			want:   `{"type": ["string", "array"], "items": {"type": "string"}}`,
		},
		{
			name:   "an unconstrained object branch keeps the merge unconstrained",
			schema: `{"anyOf": [{"$ref": "#/components/schemas/free"}, {"$ref": "#/components/schemas/address"}]}`,
			want:   `{"type": "object"}`,
		},
		{
			name:   "properties of a non-object branch do not matter",
			schema: `{"anyOf": [{"type": "string"}, {"$ref": "#/components/schemas/address"}]}`,
			want:   `{"type": ["string", "object"], "properties": {"city": {"type": ["string", "null"]}, "line1": {"type": "string"}}}`,
		},
		{
			name:   "untyped schema allows anything and absorbs types",
			schema: `{"anyOf": [{"type": "string"}, {"description": "anything"}]}`,
			want:   `{}`,
		},
		{
			name:   "cycles are cut at the first repeated ref",
			schema: `{"$ref": "#/components/schemas/node"}`,
			want: `{"type": "object", "properties": {
				"parent": {"type": ["object", "null"]},
				"children": {"type": "array", "items": {"type": "object", "properties": {
					"owner": {"type": "object"},
					"name": {"type": "string"}
				}}}
			}}`,
		},
	}
	components := parseComponents(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s oaSchema
			if err := json.Unmarshal([]byte(tt.schema), &s); err != nil {
				t.Fatal(err)
			}
			c := converter{components: components, expanding: map[string]bool{}}
			got, err := c.convert(&s)
			if err != nil {
				t.Fatal(err)
			}
			assertJSONEqual(t, got.toJSON(), tt.want)
		})
	}
}

func TestConvertRejects(t *testing.T) {
	for _, schema := range []string{
		`{"allOf": [{"type": "string"}]}`,
		`{"not": {"type": "string"}}`,
		`{"$ref": "#/components/schemas/missing"}`,
		`{"$ref": "other.json#/x"}`,
		`{"type": "file"}`,
	} {
		var s oaSchema
		if err := json.Unmarshal([]byte(schema), &s); err != nil {
			t.Fatal(err)
		}
		c := converter{components: parseComponents(t), expanding: map[string]bool{}}
		if _, err := c.convert(&s); err == nil {
			t.Errorf("convert(%s) succeeded, want an error", schema)
		}
	}
}

func TestObjectSchema(t *testing.T) {
	components := parseComponents(t)
	components["thing"] = mustSchema(t, `{
		"type": "object",
		"description": "A thing.",
		"required": ["id"],
		"properties": {
			"id": {"type": "string", "description": "Unique identifier."},
			"address": {"anyOf": [{"$ref": "#/components/schemas/address"}], "nullable": true, "description": "Where it is."},
			"self": {"anyOf": [{"$ref": "#/components/schemas/thing"}], "description": "Cycle back to the root."},
			"metadata": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 500}, "description": "Key-value pairs."}
		}
	}`)
	got, err := objectSchema(components, "thing")
	if err != nil {
		t.Fatal(err)
	}
	assertJSONEqual(t, got, `{
		"$schema": "http://json-schema.org/draft-07/schema#",
		"type": "object",
		"additionalProperties": true,
		"properties": {
			"id": {"type": "string", "description": "Unique identifier."},
			"address": {"type": ["object", "null"], "description": "Where it is.", "properties": {
				"city": {"type": ["string", "null"]},
				"line1": {"type": "string"}
			}},
			"self": {"type": "object", "description": "Cycle back to the root."},
			"metadata": {"type": "object", "description": "Key-value pairs."}
		}
	}`)
}

func parseComponents(t *testing.T) map[string]*oaSchema {
	t.Helper()
	var components map[string]*oaSchema
	if err := json.Unmarshal([]byte(testComponents), &components); err != nil {
		t.Fatal(err)
	}
	return components
}

func mustSchema(t *testing.T, src string) *oaSchema {
	t.Helper()
	var s oaSchema
	if err := json.Unmarshal([]byte(src), &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func assertJSONEqual(t *testing.T, got any, want string) {
	t.Helper()
	gotJSON, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(gotJSON, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", gotJSON, mustCompact(t, want))
	}
}

func mustCompact(t *testing.T, src string) string {
	var v any
	if err := json.Unmarshal([]byte(src), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
