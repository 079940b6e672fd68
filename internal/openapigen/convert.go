package main

import (
	"errors"
	"fmt"
	"slices"
)

// jsonSchema is a Draft-7 schema in the small subset the connector emits:
// types, properties, items and additionalProperties. Nothing else is kept
// because every other constraint (enum, maxLength, required...) would make
// records Stripe may send tomorrow fail validation today.
type jsonSchema struct {
	// Types lists the allowed JSON types in typeOrder; nil allows any.
	Types []string
	// Description is only set on an object schema's top-level properties.
	Description string
	// Properties constrain named object fields; fields not listed are always
	// allowed.
	Properties map[string]*jsonSchema
	Items      *jsonSchema
	// Maps (additionalProperties in OpenAPI) are left open: Airbyte's
	// acceptance rules want additionalProperties to be true wherever it is
	// set, and a map's values may grow new shapes.
}

// typeOrder is the order types are written in, so output is stable and reads
// as "the type, or null".
var typeOrder = []string{"string", "integer", "number", "boolean", "object", "array", "null"}

const draft7 = "http://json-schema.org/draft-07/schema#"

// objectSchema converts the component name into a standalone Draft-7
// document describing one record of a stream.
func objectSchema(components map[string]*oaSchema, name string) (map[string]any, error) {
	root, ok := components[name]
	if !ok {
		return nil, fmt.Errorf("no component schema %q", name)
	}
	c := converter{components: components, expanding: map[string]bool{name: true}}
	props := make(map[string]any, len(root.Properties))
	for key, p := range root.Properties {
		s, err := c.convert(p)
		if err != nil {
			return nil, fmt.Errorf("property %s: %w", key, err)
		}
		// Descriptions of top-level fields are shown in the UI; deeper ones
		// would only bloat the files.
		s.Description = p.Description
		props[key] = s.toJSON()
	}
	return map[string]any{
		"$schema":              draft7,
		"type":                 "object",
		"additionalProperties": true,
		"properties":           props,
	}, nil
}

type converter struct {
	components map[string]*oaSchema
	// expanding holds the components being inlined, to break cycles.
	expanding map[string]bool
}

// convert returns a fresh Draft-7 schema accepting at least what s accepts.
func (c *converter) convert(s *oaSchema) (*jsonSchema, error) {
	var out *jsonSchema
	var err error
	switch {
	case s.Ref != "":
		out, err = c.inline(s.Ref)
	case len(s.AllOf) > 0 || s.Not != nil:
		err = errors.New("allOf and not are not supported")
	case len(s.ExpansionResources) > 0:
		// An id, or the object when the request expands it. Inlining the
		// object would make schemas huge (and infinite through cycles).
		out = &jsonSchema{Types: []string{"string", "object"}}
	case len(s.AnyOf) > 0 || len(s.OneOf) > 0:
		for _, branch := range slices.Concat(s.AnyOf, s.OneOf) {
			b, err := c.convert(branch)
			if err != nil {
				return nil, err
			}
			out = merge(out, b)
		}
	default:
		out, err = c.convertTyped(s)
	}
	if err != nil {
		return nil, err
	}
	if s.Nullable {
		out.Types = unionTypes(out.Types, []string{"null"})
	}
	return out, nil
}

func (c *converter) inline(ref string) (*jsonSchema, error) {
	name, err := refName(ref)
	if err != nil {
		return nil, err
	}
	target, ok := c.components[name]
	if !ok {
		return nil, fmt.Errorf("$ref to unknown component %q", name)
	}
	if c.expanding[name] {
		return &jsonSchema{Types: []string{"object"}}, nil
	}
	c.expanding[name] = true
	defer delete(c.expanding, name)
	s, err := c.convert(target)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

func (c *converter) convertTyped(s *oaSchema) (*jsonSchema, error) {
	switch s.Type {
	case "string", "integer", "number", "boolean":
		return &jsonSchema{Types: []string{s.Type}}, nil
	case "array":
		if s.Items == nil {
			return &jsonSchema{Types: []string{"array"}}, nil
		}
		items, err := c.convert(s.Items)
		if err != nil {
			return nil, err
		}
		return &jsonSchema{Types: []string{"array"}, Items: items}, nil
	case "object":
		out := &jsonSchema{Types: []string{"object"}}
		if len(s.Properties) > 0 {
			out.Properties = make(map[string]*jsonSchema, len(s.Properties))
		}
		for key, p := range s.Properties {
			ps, err := c.convert(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			out.Properties[key] = ps
		}
		return out, nil
	case "":
		if len(s.Properties) > 0 || s.Items != nil {
			return nil, errors.New("schema with properties or items but no type")
		}
		return &jsonSchema{}, nil
	}
	return nil, fmt.Errorf("unsupported type %q", s.Type)
}

// merge returns a fresh schema accepting what a or b accept (nil a is the
// empty union). Objects are merged property by property and arrays item by
// item; an object or array side that is unconstrained makes the merge
// unconstrained too.
func merge(a, b *jsonSchema) *jsonSchema {
	if a == nil {
		out := *b
		return &out
	}
	out := &jsonSchema{Types: unionTypes(a.Types, b.Types)}

	switch aObj, bObj := a.allows("object"), b.allows("object"); {
	case aObj && bObj:
		if a.freeObject() || b.freeObject() {
			break
		}
		out.Properties = mergeProperties(a.Properties, b.Properties)
	case aObj:
		out.Properties = a.Properties
	case bObj:
		out.Properties = b.Properties
	}

	switch aArr, bArr := a.allows("array"), b.allows("array"); {
	case aArr && bArr:
		if a.Items != nil && b.Items != nil {
			out.Items = merge(a.Items, b.Items)
		}
	case aArr:
		out.Items = a.Items
	case bArr:
		out.Items = b.Items
	}
	return out
}

func mergeProperties(a, b map[string]*jsonSchema) map[string]*jsonSchema {
	out := make(map[string]*jsonSchema, len(a)+len(b))
	for k, s := range a {
		out[k] = s
	}
	for k, s := range b {
		if prev, ok := out[k]; ok {
			out[k] = merge(prev, s)
		} else {
			out[k] = s
		}
	}
	return out
}

func (s *jsonSchema) allows(typ string) bool {
	return s.Types == nil || slices.Contains(s.Types, typ)
}

// freeObject reports whether s puts no constraint on an object's fields.
func (s *jsonSchema) freeObject() bool {
	return len(s.Properties) == 0
}

// unionTypes returns the types allowed by either list, in typeOrder; nil
// (any type) absorbs everything.
func unionTypes(a, b []string) []string {
	if a == nil || b == nil {
		return nil
	}
	var out []string
	for _, t := range typeOrder {
		if slices.Contains(a, t) || slices.Contains(b, t) {
			out = append(out, t)
		}
	}
	return out
}

// toJSON returns s as a tree json.Marshal writes with sorted keys.
func (s *jsonSchema) toJSON() map[string]any {
	m := make(map[string]any)
	switch len(s.Types) {
	case 0:
	case 1:
		m["type"] = s.Types[0]
	default:
		m["type"] = s.Types
	}
	if s.Description != "" {
		m["description"] = s.Description
	}
	if len(s.Properties) > 0 {
		props := make(map[string]any, len(s.Properties))
		for k, p := range s.Properties {
			props[k] = p.toJSON()
		}
		m["properties"] = props
	}
	if s.Items != nil {
		m["items"] = s.Items.toJSON()
	}
	return m
}
