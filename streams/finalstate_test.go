package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"source-stripe/internal/testbin"
	"source-stripe/protocol"
	"source-stripe/stripeapi"
)

// lateRecord is a Lister for bank accounts over two windows of customers:
// the newer window holds cus_a, whose one bank account is huge (its line
// takes a while to build), and cus_b, whose bank accounts cannot be listed.
// The older window's (empty) page is answered only once cus_a's accounts
// have been handed out, so that the older window finishes, and
// checkpoints, while that record is being written.
type lateRecord struct {
	t0     int64
	huge   []byte
	handed chan struct{}
	once   sync.Once
}

func (s *lateRecord) Get(context.Context, string) (json.RawMessage, error) {
	return nil, fmt.Errorf("not served")
}

func (s *lateRecord) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	switch {
	case path == "/v1/customers":
		lo, _ := strconv.ParseInt(q.Get("created[gte]"), 10, 64)
		hi, _ := strconv.ParseInt(q.Get("created[lt]"), 10, 64)
		if a := s.t0 + 2*86400; lo <= a && a < hi {
			return stripeapi.Page{Data: []json.RawMessage{
				json.RawMessage(fmt.Sprintf(`{"id":"cus_a","object":"customer","created":%d}`, a)),
				json.RawMessage(fmt.Sprintf(`{"id":"cus_b","object":"customer","created":%d}`, a-1)),
			}}, nil
		}
		<-s.handed
		time.Sleep(20 * time.Millisecond) // cus_a's record is being written by now
		return stripeapi.Page{}, nil
	case strings.HasSuffix(path, "/cus_a/bank_accounts"):
		defer s.once.Do(func() { close(s.handed) })
		return stripeapi.Page{Data: []json.RawMessage{s.huge}}, nil
	default:
		return stripeapi.Page{}, &stripeapi.APIError{Status: 400, Message: "bank accounts cannot be listed"}
	}
}

// TestRecordAfterLastState: a bank account record is being written while
// the older window checkpoints, then its window fails. Read alone or riding
// on customers, the stream's last STATE follows that record, and its STATEs
// count every record. (Once, a record counted before it was written could
// land after a checkpoint that then equalled the final state, which was
// skipped: the record followed the last STATE, counted by none.)
func TestRecordAfterLastState(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var huge bytes.Buffer
	huge.WriteString(`{"id":"ba_R","object":"bank_account","created":1,"pad":[`)
	for i := range 3_000_000 {
		if i > 0 {
			huge.WriteString(",\n") // compacting it takes a while
		}
		huge.WriteString(`"x"`)
	}
	huge.WriteString("]}")
	customers, _ := Lookup("customers")
	accounts, _ := Lookup("bank_accounts")
	for _, jobs := range [][]Job{
		{{Stream: accounts, Incremental: true}},
		{{Stream: customers, Incremental: true}, {Stream: accounts, Incremental: true}}, // riding
	} {
		lister := &lateRecord{t0: t0.Unix(), huge: huge.Bytes(), handed: make(chan struct{})}
		var out bytes.Buffer
		r := &Reader{Client: lister, Out: protocol.NewWriter(&out), StartDate: t0, MaxPages: 2,
			Now: func() time.Time { return t0.Add(3 * 24 * time.Hour) }}
		_ = r.Read(context.Background(), jobs)
		r.Out.Flush()
		records, counted, afterLast := 0, 0.0, 0
		for _, m := range testbin.ParseMessages(t, out.Bytes()) {
			switch {
			case m.Type == protocol.TypeRecord && m.Record.Stream == "bank_accounts":
				records++
				afterLast++
			case m.Type == protocol.TypeState && m.State.Stream.StreamDescriptor.Name == "bank_accounts":
				counted += m.State.SourceStats.RecordCount
				afterLast = 0
			}
		}
		if records != 1 {
			t.Fatalf("%d streams: %d bank account records, want ba_R once", len(jobs), records)
		}
		if afterLast > 0 || counted != float64(records) {
			t.Fatalf("%d streams: %d record(s) follow the last STATE; the STATEs count %v of %d records", len(jobs), afterLast, counted, records)
		}
	}
}
