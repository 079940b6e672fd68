package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestWriterKeepsLinesWholeUnderConcurrency: 8 goroutines write records
// and STATEs at once; every line is whole, and every STATE counts exactly
// the records written between it and the previous STATE.
func TestWriterKeepsLinesWholeUnderConcurrency(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				obj := fmt.Sprintf("{\n  \"id\": \"ch_%d_%d\",\n  \"pad\": %q\n}", g, i, strings.Repeat("x", i))
				if err := w.Record("charges", []byte(obj), nil, 1); err != nil {
					t.Error(err)
				}
				if i%100 == 0 {
					w.StreamState("charges", json.RawMessage(`{"created":1}`))
				}
			}
		}()
	}
	wg.Wait()
	w.Flush()
	ids := map[string]bool{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(nil, 1<<20)
	since := 0 // records since the last STATE: what its count must say
	for sc.Scan() {
		var m Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("broken line %q: %v", sc.Text(), err)
		}
		switch m.Type {
		case TypeRecord:
			var rec struct{ ID string }
			json.Unmarshal(m.Record.Data, &rec)
			ids[rec.ID] = true
			since++
		case TypeState:
			if int(m.State.SourceStats.RecordCount) != since {
				t.Fatalf("a STATE counts %v records, %d precede it since the last", m.State.SourceStats.RecordCount, since)
			}
			since = 0
		}
	}
	if len(ids) != 8*500 {
		t.Fatalf("%d distinct records, want %d", len(ids), 8*500)
	}
}

func TestWriterMasksSecretsInLogsAndTraces(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Redact("sk_live_abcdef123456")
	w.Log(LevelWarn, "calling with sk_live_abcdef123456")
	w.TraceError(&Error{FailureType: FailureSystem, Message: "failed", Err: errors.New("Bearer sk_live_abcdef123456 rejected")})
	w.Write(Message{Type: TypeConnectionStatus, ConnectionStatus: &ConnectionStatus{Status: StatusFailed, Message: "key sk_live_abcdef123456"}})
	out := buf.String()
	if strings.Contains(out, "abcdef123456") {
		t.Fatalf("secret in output:\n%s", out)
	}
	if strings.Count(out, "sk_live_****") != 3 {
		t.Fatalf("want the masked key three times:\n%s", out)
	}
}

func TestRecordEnvelope(t *testing.T) {
	for _, tc := range []struct {
		name, data, fields, want string
	}{
		{"pretty-printed", "{\n \"id\": \"cus_1\",\n \"name\": \"A \\\"quoted\\\"  name\"\n}", "",
			`{"id":"cus_1","name":"A \"quoted\"  name"}`},
		{"with fields", "{\n \"id\": \"il_1\"\n}", `"invoice_id":"in_1","updated":7`,
			`{"invoice_id":"in_1","updated":7,"id":"il_1"}`},
		{"empty object with fields", "{ }", `"updated":7`, `{"updated":7 }`},
		{"one line passes as it is", `{"a": 1}`, "", `{"a": 1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			if err := w.Record("customers", []byte(tc.data), []byte(tc.fields), 1700000000123); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			want := `{"type":"RECORD","record":{"stream":"customers","data":` + tc.want + `,"emitted_at":1700000000123}}` + "\n"
			if buf.String() != want {
				t.Fatalf("got  %s\nwant %s", buf.String(), want)
			}
			if !json.Valid(bytes.TrimSpace(buf.Bytes())) {
				t.Fatal("not JSON")
			}
		})
	}
}
