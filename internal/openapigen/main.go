// Command openapigen turns Stripe's OpenAPI description (the copy embedded in
// stripe-mock) into the connector's JSON schemas, one per listed object, and
// into a Go table of the GET list endpoints. It runs from `go generate`; see
// catalog/generate.go.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/stripe/stripe-mock/embedded"
)

func main() {
	schemasDir := flag.String("schemas", "schemas", "directory to write one JSON schema per listed object into")
	endpointsFile := flag.String("endpoints", "", "Go file to write the list endpoints table into (skipped when empty)")
	flag.Parse()

	if err := run(*schemasDir, *endpointsFile); err != nil {
		fmt.Fprintln(os.Stderr, "openapigen:", err)
		os.Exit(1)
	}
}

func run(schemasDir, endpointsFile string) error {
	out, err := generate(embedded.OpenAPISpec)
	if err != nil {
		return err
	}
	if endpointsFile != "" {
		if err := os.WriteFile(endpointsFile, out.endpointsSource, 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "openapigen: wrote %d endpoints to %s\n", len(out.endpoints), endpointsFile)
	}
	total, err := writeSchemas(schemasDir, out.schemas)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "openapigen: wrote %d schemas (%d bytes) to %s\n", len(out.schemas), total, schemasDir)
	return nil
}

// output is everything the generator writes.
type output struct {
	endpoints       []endpoint
	endpointsSource []byte            // streams/endpoints_gen.go
	schemas         map[string][]byte // object name -> JSON schema file
}

func generate(specJSON []byte) (*output, error) {
	spec, err := parseSpec(specJSON)
	if err != nil {
		return nil, err
	}
	out := &output{}
	if out.endpoints, err = listEndpoints(spec); err != nil {
		return nil, err
	}
	if out.endpointsSource, err = renderEndpoints(spec.Info.Version, out.endpoints); err != nil {
		return nil, err
	}
	if out.schemas, err = objectSchemas(spec, out.endpoints); err != nil {
		return nil, err
	}
	return out, nil
}

// objectSchemas renders the schema of every object some endpoint lists,
// keyed by object name.
func objectSchemas(spec *openAPISpec, endpoints []endpoint) (map[string][]byte, error) {
	schemas := make(map[string][]byte)
	for _, e := range endpoints {
		if _, done := schemas[e.Object]; done {
			continue
		}
		s, err := objectSchema(spec.Components.Schemas, e.Object)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Object, err)
		}
		b, err := marshalIndent(s)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", e.Object, err)
		}
		schemas[e.Object] = b
	}
	return schemas, nil
}

// writeSchemas replaces the JSON files in dir by schemas and returns the
// bytes written. Files for objects no longer listed are removed, so the
// directory always mirrors the description.
func writeSchemas(dir string, schemas map[string][]byte) (int, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return 0, err
	}
	for _, f := range old {
		if _, keep := schemas[strings.TrimSuffix(filepath.Base(f), ".json")]; !keep {
			if err := os.Remove(f); err != nil {
				return 0, err
			}
		}
	}
	names := make([]string, 0, len(schemas))
	for name := range schemas {
		names = append(names, name)
	}
	sort.Strings(names)
	total := 0
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name+".json"), schemas[name], 0o644); err != nil {
			return 0, err
		}
		total += len(schemas[name])
	}
	return total, nil
}

// marshalIndent encodes v with sorted keys, two-space indentation and a
// trailing newline. HTML is not escaped: descriptions are shown to people.
func marshalIndent(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
