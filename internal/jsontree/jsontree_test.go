package jsontree

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestStrings(t *testing.T) {
	var v any
	json.Unmarshal([]byte(`{"a":["x",1,{"b":"y"}],"c":null,"d":true}`), &v)
	got := Strings(nil, v)
	slices.Sort(got)
	if want := []string{"a", "b", "c", "d", "x", "y"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
