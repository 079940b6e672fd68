package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestMember(t *testing.T) {
	obj := []byte(`{"id":"ch_1","nested":{"created":1,"s":"}\"{"},"list":[{"created":2},"]"],"esc\"aped":3,"created": 1700000000 ,"date":null,"name":"a\"b"}`)
	if v, ok := Int(obj, "created"); !ok || v != 1700000000 {
		t.Errorf("created = %d %v", v, ok)
	}
	if got := String(obj, "id"); got != "ch_1" {
		t.Errorf("id = %q", got)
	}
	if got := String(obj, "name"); got != "" {
		t.Errorf("escaped strings are refused, got %q", got)
	}
	if _, ok := Int(obj, "date"); ok {
		t.Error("null read as an integer")
	}
	for _, bad := range []string{`{"a":`, `[1]`, `{"a" 1}`, `{"a":1 "b":2}`, `<html>`} {
		if Member([]byte(bad), "a") != nil && bad != `{"a":1 "b":2}` {
			t.Errorf("found a in %s", bad)
		}
		if Members([]byte(bad), func(k, v []byte) bool { return true }) {
			t.Errorf("%s scanned as a complete object", bad)
		}
	}
	if !Members([]byte(` { } `), func(k, v []byte) bool { return true }) {
		t.Error("the empty object is complete")
	}
}

func TestElements(t *testing.T) {
	var got []string
	err := Elements([]byte(" [ {\"a\": [1, 2]}, \"x]\" ,3,null ] "), func(e []byte) error {
		got = append(got, string(e))
		return nil
	})
	want := []string{`{"a": [1, 2]}`, `"x]"`, `3`, `null`}
	if err != nil || len(got) != len(want) {
		t.Fatalf("got %q, %v", got, err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("element %d = %q, want %q", i, got[i], want[i])
		}
	}
	for _, bad := range []string{`[{"a":1}`, `[1,`, `{"a":1}`, `[1 2]`, ``} {
		if err := Elements([]byte(bad), func([]byte) error { return nil }); err == nil {
			t.Errorf("Elements(%q) accepted it", bad)
		}
	}
	if err := Elements([]byte(`[]`), func([]byte) error { t.Fatal("no element"); return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestAppendCompact(t *testing.T) {
	src := []byte("{\n  \"id\": \"a b\\\" c\",\n  \"n\": [ 1 , 2 ],\n  \"t\" : true\n}")
	var want bytes.Buffer
	json.Compact(&want, src)
	if got := AppendCompact(nil, src); !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("got %s, want %s", got, want.Bytes())
	}
}

// FuzzScanners holds the scanners to encoding/json on every valid input:
// the same compaction, the same members and elements.
func FuzzScanners(f *testing.F) {
	f.Add([]byte(`{"id":"x","created":5,"o":{"a":[1,2,{"b":"}"}]}}`))
	f.Add([]byte("[ {\"a\" : \"\\u00e9\\\"\" } , 2 ]"))
	f.Add([]byte(`{"id":`))
	f.Fuzz(func(t *testing.T, data []byte) {
		AppendCompact(nil, data)
		Member(data, "created")
		Elements(data, func([]byte) error { return nil })
		if !json.Valid(data) {
			return
		}
		var want bytes.Buffer
		json.Compact(&want, data)
		if got := AppendCompact(nil, data); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("AppendCompact(%q) = %q, want %q", data, got, want.Bytes())
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal(data, &obj) == nil {
			n := 0
			if !Members(data, func(k, v []byte) bool { n++; return true }) || n < len(obj) {
				t.Fatalf("Members(%q) saw %d members, want %d", data, n, len(obj))
			}
		}
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) == nil {
			n := 0
			if err := Elements(data, func([]byte) error { n++; return nil }); err != nil || n != len(arr) {
				t.Fatalf("Elements(%q) saw %d elements (%v), want %d", data, n, err, len(arr))
			}
		}
	})
}

func TestCompactElements(t *testing.T) {
	arr := []byte("[\n {\n  \"a\": {\"id\": \"inner\"},\n  \"id\": \"ch_1\",\n  \"s\": \"x y\"\n },\n 7 ,\n {\"id\":5}, {\"ids\":\"no\"}, \"str\" ]")
	dst, elems, err := CompactElements([]byte("prefix"), arr)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ text, id string }{
		{`{"a":{"id":"inner"},"id":"ch_1","s":"x y"}`, "ch_1"}, {`7`, ""}, {`{"id":5}`, ""}, {`{"ids":"no"}`, ""}, {`"str"`, ""},
	}
	if len(elems) != len(want) {
		t.Fatalf("got %d elements", len(elems))
	}
	for i, w := range want {
		if got := string(dst[elems[i].Start:elems[i].End]); got != w.text || elems[i].ID != w.id {
			t.Errorf("element %d = %s (id %q), want %s (id %q)", i, got, elems[i].ID, w.text, w.id)
		}
	}
	for _, bad := range []string{`[{"a":1}`, `[1,`, `{"a":1}`, `[1 2]`, `[{"a":"x}]`, ``, `[,1]`} {
		if _, _, err := CompactElements(nil, []byte(bad)); err == nil {
			t.Errorf("CompactElements(%q) accepted it", bad)
		}
	}
}

// FuzzCompactElements holds CompactElements to encoding/json: on every
// valid array, the same elements, compacted the same way, with the same ids.
func FuzzCompactElements(f *testing.F) {
	f.Add([]byte(`[{"id":"x","o":{"id":"y"}}, 1, "s", [ {"id" : "z"} ]]`))
	f.Add([]byte(`[{"id":"a\"b"}]`))
	f.Add([]byte(`[{"id":"a","id":"b"},{"id":5,"id":"c"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		dst, elems, err := CompactElements(nil, data)
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil {
			return
		}
		if err != nil || len(elems) != len(arr) {
			t.Fatalf("CompactElements(%q): %d elements, %v; want %d", data, len(elems), err, len(arr))
		}
		for i, raw := range arr {
			var want bytes.Buffer
			json.Compact(&want, raw)
			if got := dst[elems[i].Start:elems[i].End]; !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("element %d of %q: %q, want %q", i, data, got, want.Bytes())
			}
			if id := String(raw, "id"); elems[i].ID != id {
				t.Fatalf("element %d of %q: id %q, want %q", i, data, elems[i].ID, id)
			}
		}
	})
}
