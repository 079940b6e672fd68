package streams

import (
	"encoding/json"
	"testing"
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

func TestTopLevel(t *testing.T) {
	obj := []byte(`{"id":"ch_1","nested":{"created":1,"s":"}\"{"},"list":[{"created":2},"]"],"esc\"aped":3,"created": 1700000000 ,"date":null,"name":"a\"b"}`)
	if v, ok := topLevelInt(obj, "created"); !ok || v != 1700000000 {
		t.Errorf("created = %d %v", v, ok)
	}
	if got := topLevelString(obj, "id"); got != "ch_1" {
		t.Errorf("id = %q", got)
	}
	if got := topLevelString(obj, "name"); got != "" {
		t.Errorf("escaped strings are refused, got %q", got)
	}
	if _, ok := topLevelInt(obj, "date"); ok {
		t.Error("null read as an integer")
	}
	if topLevel(obj, "missing") != nil || topLevel([]byte(`{"a":`), "a") != nil || topLevel([]byte(`[1]`), "a") != nil {
		t.Error("found what is not there")
	}
}

func FuzzTopLevel(f *testing.F) {
	f.Add([]byte(`{"id":"x","created":5,"o":{"a":[1,2,{"b":"}"}]}}`))
	f.Add([]byte(`{"id":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		topLevel(data, "created")
		out := withFields(data, intField("updated", 1))
		if json.Valid(data) && len(data) > 0 && data[skipSpace(data, 0)] == '{' && !json.Valid(out) {
			t.Fatalf("withFields broke %q into %q", data, out)
		}
	})
}
