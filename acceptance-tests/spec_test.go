package acceptance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"source-stripe/protocol"
)

const draft7 = "http://json-schema.org/draft-07/schema#"

// compileDraft7 compiles a schema as Draft 7; the compiler checks it
// against the Draft-7 meta-schema.
func compileDraft7(name string, schema []byte) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	url := "acceptance://" + name
	if err := c.AddResource(url, bytes.NewReader(schema)); err != nil {
		return nil, err
	}
	return c.Compile(url)
}

// schemaKeywords calls visit with every keyword of a JSON schema and its
// location. Keys of "properties" are field names, not keywords: they are
// descended into but not visited.
func schemaKeywords(node any, at string, visit func(keyword, at string, value any)) {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			visit(k, at, v)
			if k == "properties" || k == "patternProperties" || k == "definitions" {
				if fields, ok := v.(map[string]any); ok {
					for name, sub := range fields {
						schemaKeywords(sub, at+"/"+k+"/"+name, visit)
					}
					continue
				}
			}
			schemaKeywords(v, at+"/"+k, visit)
		}
	case []any:
		for i, v := range n {
			schemaKeywords(v, fmt.Sprintf("%s/%d", at, i), visit)
		}
	}
}

// secretLooking names fields that hold credentials.
func secretLooking(name string) bool {
	name = strings.ToLower(name)
	for _, word := range []string{"secret", "password", "token", "api_key", "apikey", "private_key"} {
		if strings.Contains(name, word) {
			return true
		}
	}
	return false
}

func TestSpec(t *testing.T) {
	t.Parallel()
	p := offlinePeer(t)
	res := p.run("spec")
	requireExit(t, res, 0)
	specs := res.Of(protocol.TypeSpec)
	if len(specs) != 1 || len(specs)+len(res.Of(protocol.TypeLog)) != len(res.Messages) {
		t.Fatalf("want exactly one SPEC message and at most LOGs besides, got %d messages, %d SPEC", len(res.Messages), len(specs))
	}
	spec := specs[0].Spec

	t.Run("connectionSpecification is Draft 7", func(t *testing.T) {
		compiled, err := compileDraft7("spec", spec.ConnectionSpecification)
		if err != nil {
			t.Fatalf("connectionSpecification is not a valid Draft-7 schema: %v", err)
		}
		var s struct {
			Schema   string   `json:"$schema"`
			Type     string   `json:"type"`
			Required []string `json:"required"`
		}
		json.Unmarshal(spec.ConnectionSpecification, &s)
		if s.Schema != draft7 || s.Type != "object" || len(s.Required) == 0 {
			t.Errorf("want $schema %s, type object and required fields; got %q, %q, %v", draft7, s.Schema, s.Type, s.Required)
		}
		// The configs these tests use are configs the spec accepts.
		for _, cfg := range [][]byte{
			p.configJSON(nil),
			p.configJSON(map[string]any{"start_date": "2023-01-01T00:00:00Z", "lookback_window_days": 3}),
		} {
			var doc any
			json.Unmarshal(cfg, &doc)
			if err := compiled.Validate(doc); err != nil {
				t.Errorf("config %s does not match the spec: %v", cfg, err)
			}
		}
	})

	var schema map[string]any
	if err := json.Unmarshal(spec.ConnectionSpecification, &schema); err != nil {
		t.Fatal(err)
	}

	t.Run("secrets are airbyte_secret", func(t *testing.T) {
		props, _ := schema["properties"].(map[string]any)
		if _, ok := props["client_secret"]; !ok {
			t.Fatal("the spec has no client_secret property")
		}
		// client_secret and any other field named like a credential.
		schemaKeywords(schema, "", func(keyword, at string, value any) {
			if keyword != "properties" {
				return
			}
			for name, p := range value.(map[string]any) {
				if field, _ := p.(map[string]any); secretLooking(name) && field["airbyte_secret"] != true {
					t.Errorf("%s/properties/%s holds a secret but is not marked airbyte_secret: true", at, name)
				}
			}
		})
	})

	t.Run("no anyOf allOf oneOf not", func(t *testing.T) {
		schemaKeywords(schema, "", func(keyword, at string, _ any) {
			switch keyword {
			case "anyOf", "allOf", "oneOf", "not":
				t.Errorf("the spec uses %s at %s/", keyword, at)
			}
		})
	})

	t.Run("additionalProperties is true where set", func(t *testing.T) {
		schemaKeywords(schema, "", func(keyword, at string, value any) {
			if keyword == "additionalProperties" && value != true {
				t.Errorf("additionalProperties at %s/ is %v: configs with fields a later version drops would be rejected", at, value)
			}
		})
	})

	t.Run("matches the golden file", func(t *testing.T) {
		// The SPEC line exactly as printed, only indented.
		var line []byte
		for _, l := range bytes.Split(res.Stdout, []byte("\n")) {
			if bytes.Contains(l, []byte(`"type":"SPEC"`)) {
				line = l
			}
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, line, "", "  "); err != nil {
			t.Fatal(err)
		}
		pretty.WriteByte('\n')
		compareGolden(t, "spec.golden.json", pretty.Bytes())
	})
}

// compareGolden compares got with testdata/name exactly, or rewrites the
// file under -update.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with: go test ./acceptance-tests -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the output differs from %s (if the change is intended: go test ./acceptance-tests -update, then review the diff)\n%s", path, lineDiff(want, got))
	}
}

// lineDiff shows the first line where want and got differ.
func lineDiff(want, got []byte) string {
	w, g := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("first difference at line %d:\n  golden: %s\n  output: %s", i+1, wl, gl)
		}
	}
	return "the files differ only in line endings"
}
