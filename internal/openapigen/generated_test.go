package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"
	"github.com/stripe/stripe-mock/embedded"
)

func generateFromEmbedded(t *testing.T) *output {
	t.Helper()
	out, err := generate(embedded.OpenAPISpec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemasValidateFixtures compiles every generated schema as Draft 7 and
// validates each of stripe-mock's example objects that has one.
func TestSchemasValidateFixtures(t *testing.T) {
	out := generateFromEmbedded(t)

	var fixtures struct {
		Resources map[string]any `json:"resources"`
	}
	dec := json.NewDecoder(bytes.NewReader(embedded.OpenAPIFixtures))
	dec.UseNumber()
	if err := dec.Decode(&fixtures); err != nil {
		t.Fatal(err)
	}

	validated := map[string]bool{}
	for _, name := range sortedKeys(out.schemas) {
		schema := compileDraft7(t, name, out.schemas[name])
		fixture, ok := fixtures.Resources[name]
		if !ok {
			continue
		}
		validated[name] = true
		err := schema.Validate(fixture)
		var verr *jsonschema.ValidationError
		if errors.As(err, &verr) {
			for _, leaf := range leafErrors(verr) {
				t.Errorf("fixture %s at %q: %s (schema %s)", name, leaf.InstanceLocation, leaf.Message, leaf.KeywordLocation)
			}
		} else if err != nil {
			t.Errorf("fixture %s: %v", name, err)
		}
	}
	for _, name := range []string{"charge", "invoice", "subscription", "checkout.session"} {
		if !validated[name] {
			t.Errorf("no %s fixture was validated", name)
		}
	}
	t.Logf("validated %d fixtures against %d schemas", len(validated), len(out.schemas))

	// The schemas are lenient, but not so lenient that they accept anything.
	broken := map[string]any{"id": "ch_1", "amount": "12", "outcome": map[string]any{"risk_score": "high"}}
	var verr *jsonschema.ValidationError
	if !errors.As(compileDraft7(t, "charge", out.schemas["charge"]).Validate(broken), &verr) {
		t.Fatal("a charge with a string amount validates")
	}
	var failed []string
	for _, leaf := range leafErrors(verr) {
		failed = append(failed, leaf.InstanceLocation)
	}
	sort.Strings(failed)
	if want := []string{"/amount", "/outcome/risk_score"}; !slices.Equal(failed, want) {
		t.Errorf("broken charge fails at %v, want %v", failed, want)
	}
}

// leafErrors returns the innermost causes of e: the ones naming a field.
func leafErrors(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var leaves []*jsonschema.ValidationError
	for _, c := range e.Causes {
		leaves = append(leaves, leafErrors(c)...)
	}
	return leaves
}

func compileDraft7(t *testing.T, name string, schema []byte) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	url := "mem:///" + name + ".json"
	if err := c.AddResource(url, bytes.NewReader(schema)); err != nil {
		t.Fatalf("schema %s: %v", name, err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("schema %s does not compile: %v", name, err)
	}
	return s
}

// TestSchemasAreSelfContainedAndLenient checks the schemas use none of the
// keywords the conversion promises to drop.
func TestSchemasAreSelfContainedAndLenient(t *testing.T) {
	forbidden := []string{"$ref", "anyOf", "oneOf", "allOf", "not", "enum", "required", "maxLength", "format", "title", "pattern", "nullable"}
	out := generateFromEmbedded(t)
	for name, data := range out.schemas {
		var root map[string]any
		if err := json.Unmarshal(data, &root); err != nil {
			t.Fatalf("schema %s: %v", name, err)
		}
		if root["$schema"] != draft7 || root["type"] != "object" || root["additionalProperties"] != true {
			t.Errorf("schema %s: top level is not a Draft-7 open object", name)
		}
		walkSchemas(root, "", 0, func(s map[string]any, ptr string, depth int) {
			for key := range s {
				if slices.Contains(forbidden, key) || strings.HasPrefix(key, "x-") {
					t.Errorf("schema %s: %s has %q", name, ptr, key)
				}
			}
			if _, ok := s["description"]; ok && depth != 1 {
				t.Errorf("schema %s: %s has a description below the top-level properties", name, ptr)
			}
			if ap, ok := s["additionalProperties"]; ok && ptr != "" {
				if m, _ := ap.(map[string]any); m["type"] != "string" && !slices.Equal(asStrings(m["type"]), []string{"string", "null"}) {
					t.Errorf("schema %s: %s restricts additional properties to %v", name, ptr, ap)
				}
			}
		})
	}
}

// walkSchemas calls f on s and every subschema below it; depth counts the
// properties levels crossed.
func walkSchemas(s map[string]any, ptr string, depth int, f func(s map[string]any, ptr string, depth int)) {
	f(s, ptr, depth)
	if props, ok := s["properties"].(map[string]any); ok {
		for k, p := range props {
			walkSchemas(p.(map[string]any), ptr+"/properties/"+k, depth+1, f)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		walkSchemas(items, ptr+"/items", depth, f)
	}
	if ap, ok := s["additionalProperties"].(map[string]any); ok {
		walkSchemas(ap, ptr+"/additionalProperties", depth, f)
	}
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestEndpoints(t *testing.T) {
	out := generateFromEmbedded(t)
	byPath := map[string]endpoint{}
	for _, e := range out.endpoints {
		byPath[e.Path] = e
		if strings.HasSuffix(e.Path, "/search") {
			t.Errorf("search endpoint %s listed", e.Path)
		}
		if _, ok := out.schemas[e.Object]; !ok {
			t.Errorf("%s lists %s, which has no schema", e.Path, e.Object)
		}
	}
	if len(out.endpoints) < 100 {
		t.Errorf("got %d list endpoints, want at least 100", len(out.endpoints))
	}

	tests := []struct {
		path, object       string
		required, pathArgs []string
	}{
		{path: "/v1/charges", object: "charge"},
		{path: "/v1/checkout/sessions", object: "checkout.session"},
		{path: "/v1/checkout/sessions/{session}/line_items", object: "item", pathArgs: []string{"session"}},
		{path: "/v1/invoices/{invoice}/lines", object: "line_item", pathArgs: []string{"invoice"}},
		{path: "/v1/customers/{customer}/sources", object: "bank_account", pathArgs: []string{"customer"}},
		{path: "/v1/subscription_items", object: "subscription_item", required: []string{"subscription"}},
		{path: "/v1/accounts/{account}/capabilities", object: "capability", pathArgs: []string{"account"}},
	}
	for _, tt := range tests {
		e, ok := byPath[tt.path]
		if !ok {
			t.Errorf("%s is not listed", tt.path)
			continue
		}
		if e.Object != tt.object || !slices.Equal(e.Required, tt.required) || !slices.Equal(e.PathParams, tt.pathArgs) {
			t.Errorf("%s = %+v, want object %s, required %v, path params %v", tt.path, e, tt.object, tt.required, tt.pathArgs)
		}
	}
	if q := byPath["/v1/charges"].QueryParams; !slices.Contains(q, "created") || !slices.Contains(q, "starting_after") || !sort.StringsAreSorted(q) {
		t.Errorf("/v1/charges query params = %v", q)
	}
}

// TestGeneratedFilesUpToDate fails when the checked-in output differs from
// what the generator produces now: run `go generate ./catalog`.
func TestGeneratedFilesUpToDate(t *testing.T) {
	out := generateFromEmbedded(t)
	root := filepath.Join("..", "..")
	assertFile(t, filepath.Join(root, "streams", "endpoints_gen.go"), out.endpointsSource)

	dir := filepath.Join(root, "catalog", "schemas")
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(out.schemas) {
		t.Fatalf("%s holds %d schemas, the generator writes %d: run go generate ./catalog", dir, len(files), len(out.schemas))
	}
	for _, name := range sortedKeys(out.schemas) {
		assertFile(t, filepath.Join(dir, name+".json"), out.schemas[name])
	}
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%v (run go generate ./catalog)", err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: run go generate ./catalog", path)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
