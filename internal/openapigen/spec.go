package main

import (
	"encoding/json"
	"fmt"
	"strings"
)

// openAPISpec holds the parts of an OpenAPI 3.0 description the generator
// reads. Everything else (enum values, formats, titles, x-* keys...) is
// dropped by decoding.
type openAPISpec struct {
	Info struct {
		Version string `json:"version"`
	} `json:"info"`
	Paths      map[string]pathItem `json:"paths"`
	Components struct {
		Schemas map[string]*oaSchema `json:"schemas"`
	} `json:"components"`
}

type pathItem struct {
	Get *operation `json:"get"`
}

type operation struct {
	Parameters []parameter         `json:"parameters"`
	Responses  map[string]response `json:"responses"`
}

type parameter struct {
	Name     string `json:"name"`
	In       string `json:"in"`
	Required bool   `json:"required"`
}

type response struct {
	Content map[string]struct {
		Schema *oaSchema `json:"schema"`
	} `json:"content"`
}

// oaSchema is an OpenAPI 3.0 schema object.
type oaSchema struct {
	Ref                  string               `json:"$ref"`
	Type                 string               `json:"type"`
	Nullable             bool                 `json:"nullable"`
	Description          string               `json:"description"`
	Enum                 []any                `json:"enum"`
	Properties           map[string]*oaSchema `json:"properties"`
	Items                *oaSchema            `json:"items"`
	AdditionalProperties json.RawMessage      `json:"additionalProperties"`
	AnyOf                []*oaSchema          `json:"anyOf"`
	OneOf                []*oaSchema          `json:"oneOf"`
	AllOf                []*oaSchema          `json:"allOf"`
	Not                  *oaSchema            `json:"not"`
	// ExpansionResources marks "an id, or the object when expanded".
	ExpansionResources json.RawMessage `json:"x-expansionResources"`
}

func parseSpec(data []byte) (*openAPISpec, error) {
	var spec openAPISpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("parse OpenAPI description: %w", err)
	}
	return &spec, nil
}

const componentsPrefix = "#/components/schemas/"

// refName returns the component a $ref points at.
func refName(ref string) (string, error) {
	name, ok := strings.CutPrefix(ref, componentsPrefix)
	if !ok {
		return "", fmt.Errorf("unsupported $ref %q", ref)
	}
	return name, nil
}
