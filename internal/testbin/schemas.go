package testbin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"source-stripe/protocol"
	"source-stripe/spec"
)

// Validator checks records against the json_schema of their stream, as
// discovered.
type Validator map[string]*jsonschema.Schema

// NewValidator compiles every stream schema of a catalog as Draft 7.
func NewValidator(t testing.TB, cat *protocol.Catalog) Validator {
	t.Helper()
	v := Validator{}
	for _, s := range cat.Streams {
		c := jsonschema.NewCompiler()
		c.Draft = jsonschema.Draft7
		url := "stream://" + s.Name
		if err := c.AddResource(url, bytes.NewReader(s.JSONSchema)); err != nil {
			t.Fatalf("stream %s: %v", s.Name, err)
		}
		schema, err := c.Compile(url)
		if err != nil {
			t.Fatalf("stream %s: schema does not compile: %v", s.Name, err)
		}
		v[s.Name] = schema
	}
	return v
}

// Validate returns an error naming the stream, the record's id and the JSON
// pointer of every field that breaks the schema.
func (v Validator) Validate(r protocol.Record) error {
	schema, ok := v[r.Stream]
	if !ok {
		return fmt.Errorf("record of unknown stream %q", r.Stream)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("stream %s: record is not JSON: %v", r.Stream, err)
	}
	err := schema.Validate(doc)
	if err == nil {
		return nil
	}
	var id any
	if m, ok := doc.(map[string]any); ok {
		id = m["id"]
	}
	var problems []string
	if verr, ok := err.(*jsonschema.ValidationError); ok {
		for _, leaf := range spec.Leaves(verr) {
			problems = append(problems, fmt.Sprintf("%s: %s", pointer(leaf.InstanceLocation), leaf.Message))
		}
	} else {
		problems = append(problems, err.Error())
	}
	return fmt.Errorf("stream %s, record %v does not match its schema: %s", r.Stream, id, strings.Join(problems, "; "))
}

func pointer(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// IDs returns the id of each record.
func IDs(records []protocol.Record) []string {
	ids := make([]string, len(records))
	for i, r := range records {
		var obj struct {
			ID string `json:"id"`
		}
		json.Unmarshal(r.Data, &obj)
		ids[i] = obj.ID
	}
	return ids
}
