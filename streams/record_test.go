package streams

import (
	"encoding/json"
	"testing"

	"source-stripe/internal/jsonscan"
)

func TestWithFields(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"il_1"}`:         `{"invoice_id":"in_1","updated":7,"id":"il_1"}`,
		"{\n  \"id\": \"x\"\n}": "{\"invoice_id\":\"in_1\",\"updated\":7,\n  \"id\": \"x\"\n}",
		`{}`:                    `{"invoice_id":"in_1","updated":7}`,
		` { } `:                 ` {"invoice_id":"in_1","updated":7 } `,
	} {
		got := string(withFields([]byte(in), stringField("invoice_id", "in_1"), intField("updated", 7)))
		if got != want {
			t.Errorf("withFields(%q) = %q, want %q", in, got, want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("withFields(%q) is not JSON: %s", in, got)
		}
	}
}

func FuzzWithFields(f *testing.F) {
	f.Add([]byte(`{"id":"x","created":5,"o":{"a":[1,2,{"b":"}"}]}}`))
	f.Add([]byte(` { } `))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := withFields(data, intField("updated", 1))
		if json.Valid(data) && len(data) > 0 && data[jsonscan.SkipSpace(data, 0)] == '{' && !json.Valid(out) {
			t.Fatalf("withFields broke %q into %q", data, out)
		}
	})
}
