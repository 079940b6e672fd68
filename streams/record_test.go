package streams

import "testing"

func TestRenderFields(t *testing.T) {
	got := string(renderFields([]field{stringField("invoice_id", "in_1"), intField("updated", 7), {DeletedField, trueJSON}}))
	if want := `"invoice_id":"in_1","updated":7,"is_deleted":true`; got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	if renderFields(nil) != nil {
		t.Fatal("no fields render as nothing")
	}
}

func TestCreationOf(t *testing.T) {
	if c := creationOf([]byte(`{"id":"ch_1","nested":{"created":1},"created": 1700000000,"updated":1700000100}`), "created"); c != 1700000000 {
		t.Fatalf("got %d", c)
	}
	if c := creationOf([]byte(`{"id":"ii_1","date":5,"o":{"updated":2}}`), "date"); c != 5 {
		t.Fatalf("got %d", c)
	}
}
