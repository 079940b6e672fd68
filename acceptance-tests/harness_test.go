package acceptance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// runTimeout bounds one run of the connector; a read here takes about a second.
const runTimeout = 2 * time.Minute

// peer is a Stripe API the connector is pointed at: the fake or stripe-mock.
type peer struct {
	t         *testing.T
	env       []string
	accountID string
	key       string
}

// fakePeer starts a fake Stripe holding d; it stops when the test ends.
func fakePeer(t *testing.T, d fakestripe.Dataset, opts ...fakestripe.Option) (*peer, *fakestripe.Server) {
	t.Helper()
	fake := fakestripe.New(opts...)
	t.Cleanup(fake.Close)
	fake.Seed(d)
	return &peer{t: t, env: []string{"STRIPE_API_BASE=" + fake.URL()}, accountID: fakestripe.DefaultAccountID, key: fakestripe.DefaultKey}, fake
}

// offlinePeer is for commands that must not call Stripe (spec, discover,
// reads refused before any request): its base URL is a closed loopback port.
func offlinePeer(t *testing.T) *peer {
	return &peer{t: t, env: []string{"STRIPE_API_BASE=http://127.0.0.1:9"}, accountID: "acct_offline", key: "sk_test_offline_0000"}
}

// mockPeer points the connector at the shared stripe-mock.
func mockPeer(t *testing.T) (*peer, *stripeMock) {
	t.Helper()
	m := startedStripeMock(t)
	return &peer{t: t, env: []string{"STRIPE_API_BASE=" + m.URL}, accountID: m.AccountID, key: stripeMockKey}, m
}

// on returns p bound to t, for use inside a subtest: failures must reach
// the test that runs the command.
func (p *peer) on(t *testing.T) *peer {
	c := *p
	c.t = t
	return &c
}

// configJSON is a config for the peer's account with fields overriding it
// (a nil value removes the field).
func (p *peer) configJSON(fields map[string]any) []byte {
	return testbin.Config(p.accountID, p.key, fields)
}

func (p *peer) config(fields map[string]any) string {
	return testbin.WriteFile(p.t, "config.json", p.configJSON(fields))
}

func (p *peer) run(args ...string) testbin.Result {
	p.t.Helper()
	return testbin.Run(p.t, runTimeout, p.env, args...)
}

// read runs read with a config, a configured catalog and, when not nil,
// a state file.
func (p *peer) read(config map[string]any, catalog, state []byte) testbin.Result {
	p.t.Helper()
	args := []string{"read", "--config", p.config(config), "--catalog", testbin.WriteFile(p.t, "catalog.json", catalog)}
	if state != nil {
		args = append(args, "--state", testbin.WriteFile(p.t, "state.json", state))
	}
	return p.run(args...)
}

// discover returns the catalog the connector advertises.
func (p *peer) discover() *protocol.Catalog {
	p.t.Helper()
	res := p.run("discover", "--config", p.config(nil))
	requireExit(p.t, res, 0)
	cats := res.Of(protocol.TypeCatalog)
	if len(cats) != 1 {
		p.t.Fatalf("discover printed %d CATALOG messages, want 1", len(cats))
	}
	return cats[0].Catalog
}

// syncModeOf picks a stream's sync mode in a configured catalog; "" leaves
// the stream out.
type syncModeOf func(protocol.Stream) string

// bestMode is incremental where the stream supports it: what platforms pick.
func bestMode(s protocol.Stream) string {
	if slices.Contains(s.SupportedSyncModes, protocol.SyncModeIncremental) {
		return protocol.SyncModeIncremental
	}
	return protocol.SyncModeFullRefresh
}

func fullRefreshMode(protocol.Stream) string { return protocol.SyncModeFullRefresh }

// incrementalOnly configures the incremental streams and leaves the others out.
func incrementalOnly(s protocol.Stream) string {
	if slices.Contains(s.SupportedSyncModes, protocol.SyncModeIncremental) {
		return protocol.SyncModeIncremental
	}
	return ""
}

// configuredStreams builds a configured catalog's streams the way platforms
// do: the whole discovered stream, its default cursor and primary key.
func configuredStreams(cat *protocol.Catalog, mode syncModeOf) []map[string]any {
	var out []map[string]any
	for _, s := range cat.Streams {
		m := mode(s)
		if m == "" {
			continue
		}
		cs := map[string]any{
			"stream":                s,
			"sync_mode":             m,
			"destination_sync_mode": "append",
			"primary_key":           s.SourceDefinedPrimaryKey,
		}
		if m == protocol.SyncModeIncremental {
			cs["cursor_field"] = s.DefaultCursorField
		} else {
			cs["destination_sync_mode"] = "overwrite"
		}
		out = append(out, cs)
	}
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// configuredCatalog is the JSON of a configured catalog of cat's streams.
func configuredCatalog(t testing.TB, cat *protocol.Catalog, mode syncModeOf) ([]byte, []string) {
	t.Helper()
	streams := configuredStreams(cat, mode)
	var names []string
	for _, cs := range streams {
		names = append(names, cs["stream"].(protocol.Stream).Name)
	}
	if len(names) == 0 {
		t.Fatal("the configured catalog has no streams")
	}
	return mustJSON(t, map[string]any{"streams": streams}), names
}

func streamOf(t testing.TB, cat *protocol.Catalog, name string) protocol.Stream {
	t.Helper()
	for _, s := range cat.Streams {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("discover has no stream %q", name)
	return protocol.Stream{}
}

func requireExit(t testing.TB, res testbin.Result, code int) {
	t.Helper()
	if res.ExitCode != code {
		t.Fatalf("exit code %d, want %d; trace errors: %s\nstderr:\n%s", res.ExitCode, code, describeErrors(res.Errors()), res.Stderr)
	}
}

func describeErrors(errs []protocol.TraceErr) string {
	if len(errs) == 0 {
		return "none"
	}
	var b strings.Builder
	for _, e := range errs {
		stream := ""
		if e.StreamDescriptor != nil {
			stream = e.StreamDescriptor.Name + ": "
		}
		fmt.Fprintf(&b, "\n  %s%s [%s] internal_message: %s", stream, e.Message, e.FailureType, e.InternalMessage)
	}
	return b.String()
}

// requireCompleteRead: exit 0, no TRACE ERROR, and every configured stream
// went STARTED → RUNNING → COMPLETE and nothing else. A stream that ended
// otherwise is reported with its TRACE ERROR, internal_message included
// (where a peer's 400 shows up).
func requireCompleteRead(t testing.TB, res testbin.Result, streams []string) {
	t.Helper()
	var problems []string
	if res.ExitCode != 0 {
		problems = append(problems, fmt.Sprintf("exit code %d", res.ExitCode))
	}
	errs := res.Errors()
	if len(errs) > 0 {
		problems = append(problems, "TRACE ERRORs:"+describeErrors(errs))
	}
	statuses := res.Statuses()
	want := []string{protocol.StreamStarted, protocol.StreamRunning, protocol.StreamComplete}
	for _, s := range streams {
		if got := statuses[s]; !slices.Equal(got, want) {
			problems = append(problems, fmt.Sprintf("stream %s: statuses %v, want %v", s, got, want))
		}
	}
	for s := range statuses {
		if !slices.Contains(streams, s) {
			problems = append(problems, fmt.Sprintf("stream %s was not configured but has statuses %v", s, statuses[s]))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("the read did not complete cleanly:\n%s\nstderr:\n%.3000s", strings.Join(problems, "\n"), res.Stderr)
	}
}

// recordKey identifies a record across reads.
type recordKey struct{ stream, id string }

func (k recordKey) String() string { return k.stream + "/" + k.id }

// recordObject decodes a record's data, numbers kept exact.
func recordObject(t testing.TB, r protocol.Record) map[string]any {
	t.Helper()
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		t.Fatalf("stream %s: record data is not a JSON object: %v", r.Stream, err)
	}
	return obj
}

// lookupPath follows a field path (a primary key or cursor) in an object.
func lookupPath(obj map[string]any, path []string) (any, bool) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func keyOf(t testing.TB, r protocol.Record) recordKey {
	t.Helper()
	id, _ := recordObject(t, r)["id"].(string)
	if id == "" {
		t.Fatalf("stream %s: record without a string id: %.200s", r.Stream, r.Data)
	}
	return recordKey{r.Stream, id}
}

// keys returns the set of records of res, failing on a record read twice:
// no read here should repeat one.
func keys(t testing.TB, res testbin.Result) map[recordKey]protocol.Record {
	t.Helper()
	out := map[recordKey]protocol.Record{}
	for _, r := range res.Records("") {
		k := keyOf(t, r)
		if _, dup := out[k]; dup {
			t.Fatalf("record %s emitted twice in one read", k)
		}
		out[k] = r
	}
	return out
}

// cursorOf returns a record's cursor value, in epoch seconds.
func cursorOf(t testing.TB, s protocol.Stream, r protocol.Record) int64 {
	t.Helper()
	v, ok := lookupPath(recordObject(t, r), s.DefaultCursorField)
	n, isNum := v.(json.Number)
	if !ok || !isNum {
		t.Fatalf("stream %s: record %s has no numeric cursor %v: %.200s", s.Name, keyOf(t, r), s.DefaultCursorField, r.Data)
	}
	c, err := n.Int64()
	if err != nil {
		t.Fatalf("stream %s: cursor %s is not an integer", s.Name, n)
	}
	return c
}

// cursorState is the part of a stream_state these tests read.
type cursorState struct {
	Created *int64 `json:"created"`
	// Events is the change-tracking cursor of streams that follow Stripe's
	// events.
	Events *struct {
		Since     int64 `json:"since"`
		Following bool  `json:"following"`
	} `json:"events"`
}

// eventOverlap is how far before its events cursor a change-tracked stream
// reads events again (state.Overlap).
const eventOverlap = 30

// finalCursors returns, for each stream, the lowest cursor value a record
// of a read resumed from its last STATE may carry: the created cursor, or
// for a stream that follows events, the events cursor less the overlap the
// connector re-reads.
func finalCursors(t testing.TB, res testbin.Result) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, st := range res.States() {
		if st.Stream == nil {
			t.Fatalf("STATE without a stream: %+v", st)
		}
		var cs cursorState
		if err := json.Unmarshal(st.Stream.StreamState, &cs); err != nil {
			t.Fatalf("stream %s: malformed state: %s", st.Stream.StreamDescriptor.Name, st.Stream.StreamState)
		}
		name := st.Stream.StreamDescriptor.Name
		switch {
		case cs.Events != nil && cs.Events.Following:
			out[name] = cs.Events.Since - eventOverlap
		case cs.Created != nil:
			out[name] = *cs.Created
		default:
			t.Fatalf("stream %s: state without a cursor: %s", name, st.Stream.StreamState)
		}
	}
	return out
}

// rawStates returns the STATE lines of stdout as generic JSON, to see
// fields exactly as written (protocol.State drops what it does not know).
func rawStates(t testing.TB, res testbin.Result) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(res.Stdout))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var m struct {
			Type  string         `json:"type"`
			State map[string]any `json:"state"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		if m.Type == string(protocol.TypeState) {
			out = append(out, m.State)
		}
	}
	return out
}

func requireNoSecret(t testing.TB, res testbin.Result, secret string) {
	t.Helper()
	if strings.Contains(string(res.Stdout), secret) || strings.Contains(res.Stderr, secret) {
		t.Fatalf("the secret %q appears in the output", secret)
	}
}

func sortedKeys[V any](m map[recordKey]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k.String())
	}
	sort.Strings(out)
	return out
}

// firstLines abbreviates a list in a failure message.
func firstLines(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" ... (%d more)", len(items)-n)
}

// childKindOf maps each child stream to the fake's kinds of child and
// parent, to add children between reads.
var childKindOf = map[string][2]string{
	"bank_accounts":                 {fakestripe.KindBankAccount, fakestripe.KindCustomer},
	"checkout_sessions_line_items":  {fakestripe.KindCheckoutSessionLineItem, fakestripe.KindCheckoutSession},
	"customer_balance_transactions": {fakestripe.KindCustomerBalanceTransaction, fakestripe.KindCustomer},
	"invoice_line_items":            {fakestripe.KindInvoiceLineItem, fakestripe.KindInvoice},
	"subscription_items":            {fakestripe.KindSubscriptionItem, fakestripe.KindSubscription},
}

// kindOf maps each incremental stream to the fake's object kind, to create
// new objects between reads.
var kindOf = map[string]string{
	"balance_transactions": fakestripe.KindBalanceTransaction,
	"charges":              fakestripe.KindCharge,
	"checkout_sessions":    fakestripe.KindCheckoutSession,
	"coupons":              fakestripe.KindCoupon,
	"customers":            fakestripe.KindCustomer,
	"disputes":             fakestripe.KindDispute,
	"events":               fakestripe.KindEvent,
	"invoice_items":        fakestripe.KindInvoiceItem,
	"invoices":             fakestripe.KindInvoice,
	"payment_intents":      fakestripe.KindPaymentIntent,
	"payouts":              fakestripe.KindPayout,
	"plans":                fakestripe.KindPlan,
	"products":             fakestripe.KindProduct,
	"promotion_codes":      fakestripe.KindPromotionCode,
	"refunds":              fakestripe.KindRefund,
	"subscriptions":        fakestripe.KindSubscription,
	"transfers":            fakestripe.KindTransfer,
}
