package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

type gone404 struct{}

func (gone404) ListPage(ctx context.Context, path string, q url.Values) (stripeapi.Page, error) {
	return stripeapi.Page{}, nil
}
func (gone404) Get(ctx context.Context, path string) (json.RawMessage, error) {
	return nil, &stripeapi.APIError{Path: path, Status: 404}
}

// TestTiedUpdateAndDeletion: an update and a deletion in the same second,
// listed newest first as Stripe does: the deletion is emitted, although
// fetching the object (a tie) answers 404.
func TestTiedUpdateAndDeletion(t *testing.T) {
	var out bytes.Buffer
	r := &Reader{Client: gone404{}, Out: protocol.NewWriter(&out), Now: time.Now}
	coupons, _ := Lookup("coupons")
	run := r.newRun(Job{Stream: coupons, Incremental: true, State: state.Stream{Events: &state.Events{Since: 1, Following: true}}}, 0)
	mk := func(id, typ string) event {
		var ev event
		ev.ID, ev.Type, ev.Created, ev.APIVersion = id, typ, 1000, stripeapi.APIVersion
		ev.Data.Object = json.RawMessage(`{"id":"co_1","object":"coupon"}`)
		return ev
	}
	run.pending = []event{mk("evt_2", "coupon.deleted"), mk("evt_1", "coupon.updated")}
	if err := run.applyEvents(context.Background(), 2000); err != nil {
		t.Fatal(err)
	}
	r.Out.Flush()
	if !strings.Contains(out.String(), `"is_deleted":true`) {
		t.Fatalf("deletion lost; output:\n%s", out.String())
	}
}

// TestNewestKeepsOneEntryPerKey: a parent forgotten (deleted) and then
// changed again in the same batch is listed once, so its children are read
// once.
func TestNewestKeepsOneEntryPerKey(t *testing.T) {
	var n newest
	ev := func(created int64) event { var e event; e.Created = created; return e }
	n.note("in_1", ev(1))
	n.forget("in_1")
	n.note("in_1", ev(2))
	n.note("in_2", ev(1))
	if len(n.order) != 2 || n.byKey["in_1"] == nil || n.byKey["in_1"].ev.Created != 2 {
		t.Fatalf("order %v, in_1 %+v", n.order, n.byKey["in_1"])
	}
}
