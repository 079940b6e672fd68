package flow_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/estuary/flow/go/protocols/capture"
	pf "github.com/estuary/flow/go/protocols/flow"

	"source-stripe/flow"
	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
)

// kinds maps each stream to the fake's object kind and parent kind.
var kinds = testbin.StreamKinds

// objects returns the fake's current objects of a stream, by id.
func (f *fake) objects(stream string) map[string]json.RawMessage {
	k := kinds[stream]
	out := map[string]json.RawMessage{}
	add := func(raws []json.RawMessage) {
		for _, raw := range raws {
			out[idOf(raw)] = raw
		}
	}
	if k.Parent == "" {
		add(f.Objects(k.Kind))
	} else {
		for _, p := range f.IDs(k.Parent) {
			add(f.Children(k.Kind, p))
		}
	}
	return out
}

// doc is a captured document.
type doc struct {
	stream string
	id     string
	op     string
	raw    json.RawMessage
	fields map[string]any
}

// docs returns the captured documents of resps, naming each binding by the
// stream of spec's binding.
func docs(t *testing.T, spec *pf.CaptureSpec, resps []*capture.Response) []doc {
	t.Helper()
	var out []doc
	for _, r := range resps {
		if r.Captured == nil {
			continue
		}
		if int(r.Captured.Binding) >= len(spec.Bindings) {
			t.Fatalf("a document of binding %d; there are %d", r.Captured.Binding, len(spec.Bindings))
		}
		d := doc{stream: spec.Bindings[r.Captured.Binding].ResourcePath[0], raw: r.Captured.DocJson}
		if err := json.Unmarshal(d.raw, &d.fields); err != nil {
			t.Fatal(err)
		}
		d.id, _ = d.fields["id"].(string)
		meta, _ := d.fields["_meta"].(map[string]any)
		d.op, _ = meta["op"].(string)
		out = append(out, d)
	}
	return out
}

func idOf(raw []byte) string {
	var o struct{ ID string }
	json.Unmarshal(raw, &o)
	return o.ID
}

// mergedState applies the checkpoints of resps to state as the runtime
// does: RFC 7396 merge patches.
func mergedState(t *testing.T, state json.RawMessage, resps []*capture.Response) json.RawMessage {
	t.Helper()
	var doc any = map[string]any{}
	if len(state) > 0 {
		if err := json.Unmarshal(state, &doc); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range resps {
		if r.Checkpoint == nil {
			continue
		}
		if !r.Checkpoint.State.MergePatch {
			t.Fatalf("a checkpoint that is not a merge patch: %s", r.Checkpoint.State.UpdatedJson)
		}
		var patch any
		if err := json.Unmarshal(r.Checkpoint.State.UpdatedJson, &patch); err != nil {
			t.Fatal(err)
		}
		doc = flow.ApplyMergePatch(doc, patch)
	}
	b, _ := json.Marshal(doc)
	return b
}

// streamState is a binding's state in a merged connector state.
type streamState struct {
	Created *int64
	Events  *struct{ Following bool }
}

func stateOf(t *testing.T, merged json.RawMessage, key string) streamState {
	var all map[string]streamState
	if err := json.Unmarshal(merged, &all); err != nil {
		t.Fatal(err)
	}
	return all[key]
}

// caughtUp holds when every stream of spec (or only those named) has
// captured every object the fake holds (besides those in before), a
// checkpoint has followed, and the change-tracked streams follow events.
func caughtUp(t *testing.T, f *fake, spec *pf.CaptureSpec, only []string, state json.RawMessage, before []doc) func([]*capture.Response) bool {
	return func(resps []*capture.Response) bool {
		if len(resps) == 0 || resps[len(resps)-1].Checkpoint == nil {
			return false
		}
		have := map[string]bool{}
		for _, d := range append(docs(t, spec, resps), before...) {
			have[d.stream+"/"+d.id] = true
		}
		merged := mergedState(t, state, resps)
		for _, b := range spec.Bindings {
			s := b.ResourcePath[0]
			if only != nil && !slices.Contains(only, s) {
				continue
			}
			for id := range f.objects(s) {
				if !have[s+"/"+id] {
					return false
				}
			}
			st := stateOf(t, merged, b.StateKey)
			if s != "events" && s != "balance_transactions" && (st.Events == nil || !st.Events.Following) {
				return false
			}
		}
		return true
	}
}

// sameObject compares a Stripe object with a document, ignoring the fields
// the connector adds.
func sameObject(t *testing.T, stripe, document []byte) bool {
	var a, b map[string]any
	if json.Unmarshal(stripe, &a) != nil || json.Unmarshal(document, &b) != nil {
		t.Fatalf("not JSON objects: %s / %s", stripe, document)
	}
	for _, f := range []string{"_meta", "updated", "is_deleted", "invoice_id", "checkout_session_id"} {
		if _, ok := a[f]; !ok {
			delete(b, f)
		}
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// requireClean checks how a capture ended: exit 0, Opened first, a
// checkpoint last (no document is left uncommitted), and every log line one
// Flow reads.
func requireClean(t *testing.T, c *connector, code int) {
	t.Helper()
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, c.Stderr())
	}
	resps := c.responses()
	if len(resps) == 0 || resps[0].Opened == nil {
		t.Fatalf("the first response is not Opened: %v", resps)
	}
	if resps[len(resps)-1].Checkpoint == nil {
		t.Errorf("the last response is not a checkpoint: %v", resps[len(resps)-1])
	}
	for _, r := range resps[1:] {
		if r.Opened != nil || (r.Captured == nil && r.Checkpoint == nil) {
			t.Errorf("after Opened, a response that is neither Captured nor Checkpoint: %v", r)
		}
	}
	for _, l := range c.logs() {
		if l.Level == "error" {
			t.Errorf("error log: %s", l.Message)
		}
	}
}

// TestCaptureBackfill captures every stream from scratch: each of the
// fake's objects arrives once, as Stripe serves it, valid against the
// discovered collection schema, and the capture stops cleanly when stdin
// closes.
func TestCaptureBackfill(t *testing.T) {
	f := newFake(t)
	discovered, code, c := unary(t, f.env, &capture.Request{Discover: &capture.Request_Discover{ConnectorType: pf.CaptureSpec_IMAGE, ConfigJson: config()}})
	if code != 0 {
		t.Fatalf("discover: exit %d; stderr:\n%s", code, c.Stderr())
	}
	var names []string
	schemas := map[string][]byte{}
	for _, b := range discovered.Discovered.Bindings {
		names = append(names, b.RecommendedName)
		schemas[b.RecommendedName] = b.DocumentSchemaJson
	}
	spec := captureSpec(config(), names...)

	c = start(t, f.env, "--log.level=info")
	c.send(open(spec, 0, 0xffffffff, nil))
	c.waitFor(20*time.Second, "every stream caught up", caughtUp(t, f, spec, nil, nil, nil))
	requireClean(t, c, c.stop(0))

	got := docs(t, spec, c.responses())
	byStream := map[string]map[string]doc{}
	ops := map[string]map[string]int{}
	for _, d := range got {
		if byStream[d.stream] == nil {
			byStream[d.stream], ops[d.stream] = map[string]doc{}, map[string]int{}
		}
		if _, dup := byStream[d.stream][d.id]; dup {
			t.Errorf("%s: %s captured twice", d.stream, d.id)
		}
		byStream[d.stream][d.id] = d
		ops[d.stream][d.op]++
	}
	for _, s := range names {
		want := f.objects(s)
		if len(want) == 0 {
			t.Fatalf("%s: the fake holds nothing; the test proves nothing", s)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(byStream[s]))) {
			t.Errorf("%s: captured %d ids, the fake holds %d", s, len(byStream[s]), len(want))
		}
		schema := compile(t, schemas[s])
		for id, d := range byStream[s] {
			if !sameObject(t, want[id], d.raw) {
				t.Errorf("%s %s: document differs from Stripe's object:\n%s\n%s", s, id, d.raw, want[id])
				break
			}
			// The runtime adds _meta/uuid before it validates.
			var v any
			json.Unmarshal(d.raw, &v)
			v.(map[string]any)["_meta"].(map[string]any)["uuid"] = "0b7d8a6e-a8c4-11ee-8001-0242ac110002"
			if err := schema.Validate(v); err != nil {
				t.Errorf("%s %s: invalid against the collection schema: %v", s, id, err)
				break
			}
		}
		// Objects read by a backfill are creations, except that children
		// without a creation time cannot tell.
		wantOp := "c"
		switch s {
		case "bank_accounts", "invoice_line_items", "checkout_sessions_line_items":
			wantOp = "u"
		}
		if ops[s][wantOp] != len(byStream[s]) {
			t.Errorf("%s: _meta.op counts %v, want all %q", s, ops[s], wantOp)
		}
	}
}

// TestCaptureResumesFromMergedCheckpoints: a capture that crashes resumes
// from the state the runtime merged from its checkpoints, losing nothing
// and repeating only what its last checkpoints did not cover; a capture
// stopped cleanly resumes with nothing to repeat, and then captures exactly
// the change made meanwhile.
func TestCaptureResumesFromMergedCheckpoints(t *testing.T) {
	// Latency spreads the backfill over time, so the crash lands in it.
	f := newFake(t, fakestripe.WithLatency(4*time.Millisecond, 2*time.Millisecond))
	streams := []string{"charges", "customers", "coupons", "invoices", "invoice_line_items", "products", "events", "balance_transactions"}
	spec := captureSpec(config(), streams...)

	// 1: crash right after a checkpoint that committed documents of a
	// stream whose own state has not moved past them yet (another stream's
	// checkpoint committed them): the restart reads those again.
	c := start(t, f.env)
	c.send(open(spec, 0, 0xffffffff, nil))
	// The first such checkpoint in what has arrived, wherever it is: the
	// backfill may be over before the test looks (a loaded machine), and
	// the crash is simulated by dropping what came after it anyway.
	crashAt := 0
	c.waitFor(20*time.Second, "a checkpoint ahead of a stream's state", func(r []*capture.Response) bool {
		ahead := map[string]bool{}
		for i, x := range r {
			switch {
			case x.Captured != nil:
				ahead[spec.Bindings[x.Captured.Binding].StateKey] = true
			case x.Checkpoint != nil:
				var updated map[string]any
				json.Unmarshal(x.Checkpoint.State.UpdatedJson, &updated)
				for key := range updated {
					ahead[key] = false
				}
				if slices.Contains(slices.Collect(maps.Values(ahead)), true) {
					crashAt = i + 1
					return true
				}
			}
		}
		return false
	})
	c.kill()
	// What came after that checkpoint dies with the connector.
	run1 := c.responses()[:crashAt]
	state1 := mergedState(t, nil, run1)
	docs1 := docs(t, spec, run1)
	if len(docs1) == 0 {
		t.Fatal("nothing was committed before the crash; the test proves nothing")
	}

	// 2: resume from the merged state, until caught up.
	c = start(t, f.env)
	c.send(open(spec, 0, 0xffffffff, state1))
	c.waitFor(20*time.Second, "every stream caught up", caughtUp(t, f, spec, nil, state1, docs1))
	requireClean(t, c, c.stop(0))
	run2 := c.responses()
	state2 := mergedState(t, state1, run2)
	docs2 := docs(t, spec, run2)

	seen1 := map[string]doc{}
	for _, d := range docs1 {
		seen1[d.stream+"/"+d.id] = d
	}
	seen2 := map[string]bool{}
	repeated := 0
	for _, d := range docs2 {
		key := d.stream + "/" + d.id
		if seen2[key] {
			t.Errorf("%s captured twice after the restart", key)
		}
		seen2[key] = true
		if _, ok := seen1[key]; !ok {
			continue
		}
		repeated++
		// Only what the crashed run had not checkpointed is read again: for
		// a top-level stream, objects created at or after its cursor.
		if st := stateOf(t, state1, d.stream); st.Created != nil && kinds[d.stream].Parent == "" {
			created, _ := d.fields["created"].(float64)
			if int64(created) < *st.Created {
				t.Errorf("%s (created %d) was committed before the crash and captured again, below the checkpointed cursor %d", key, int64(created), *st.Created)
			}
		}
	}
	for _, s := range streams {
		for id := range f.objects(s) {
			if _, ok := seen1[s+"/"+id]; !ok && !seen2[s+"/"+id] {
				t.Errorf("%s/%s was lost", s, id)
			}
		}
	}
	t.Logf("crash after %d committed documents; the restart captured %d, %d of them again", len(docs1), len(docs2), repeated)
	if repeated == 0 {
		t.Error("the restart read nothing again, though the crash left a stream's state behind its committed documents")
	}

	// 3: a change while stopped, then a clean restart: exactly that change.
	id := f.IDs(fakestripe.KindCustomer)[3]
	f.Update(fakestripe.KindCustomer, id, time.Time{}, map[string]any{"description": "changed while stopped"})
	c = start(t, f.env)
	c.send(open(spec, 0, 0xffffffff, state2))
	c.waitFor(10*time.Second, "the change", func(r []*capture.Response) bool {
		return slices.ContainsFunc(docs(t, spec, r), func(d doc) bool { return d.id == id }) && r[len(r)-1].Checkpoint != nil
	})
	time.Sleep(300 * time.Millisecond) // a few more polls: nothing else comes
	requireClean(t, c, c.stop(0))
	for _, d := range docs(t, spec, c.responses()) {
		switch {
		case d.stream == "customers" && d.id == id:
			if d.op != "u" || d.fields["description"] != "changed while stopped" {
				t.Errorf("the change arrived as %s", d.raw)
			}
		case d.stream == "events" && strings.HasPrefix(fmt.Sprint(d.fields["type"]), "customer.updated"):
		default:
			t.Errorf("after a clean stop, the restart captured %s %s again", d.stream, d.id)
		}
	}
}

// TestCaptureChanges: changes made while the capture runs arrive as
// documents with the matching _meta.op, each committed by a checkpoint; the
// capture ends cleanly on SIGTERM too.
func TestCaptureChanges(t *testing.T) {
	f := newFake(t)
	spec := captureSpec(config(), "coupons", "customers")
	c := start(t, f.env)
	c.send(open(spec, 0, 0xffffffff, nil))
	c.waitFor(20*time.Second, "the end of the backfill", caughtUp(t, f, spec, nil, nil, nil))

	arrived := func(stream, id, op string) func([]*capture.Response) bool {
		return func(r []*capture.Response) bool {
			for _, d := range docs(t, spec, r) {
				if d.stream == stream && d.id == id && d.op == op {
					return r[len(r)-1].Checkpoint != nil
				}
			}
			return false
		}
	}
	customer := f.IDs(fakestripe.KindCustomer)[7]
	f.Update(fakestripe.KindCustomer, customer, time.Time{}, map[string]any{"metadata": map[string]any{"tier": "gold"}})
	c.waitFor(5*time.Second, "the customer update", arrived("customers", customer, "u"))
	coupon := f.IDs(fakestripe.KindCoupon)[2]
	f.Delete(fakestripe.KindCoupon, coupon, time.Time{})
	c.waitFor(5*time.Second, "the coupon deletion", arrived("coupons", coupon, "d"))
	created := f.Create(fakestripe.KindCoupon, time.Time{}, nil)
	c.waitFor(5*time.Second, "the new coupon", arrived("coupons", created, "c"))
	requireClean(t, c, c.stop(syscall.SIGTERM))

	for _, d := range docs(t, spec, c.responses()) {
		switch {
		case d.id == customer && d.op == "u":
			want, _ := f.Object(fakestripe.KindCustomer, customer)
			if !sameObject(t, want, d.raw) {
				t.Errorf("the updated customer differs from Stripe's:\n%s\n%s", d.raw, want)
			}
		case d.id == coupon && d.op == "d":
			if d.fields["is_deleted"] != true {
				t.Errorf("the deleted coupon: %s", d.raw)
			}
		}
	}
}

// TestCaptureShards: two shards splitting the key range capture disjoint
// sets of streams which together are every stream, each object exactly
// once; a shard whose range holds no binding idles until stopped.
func TestCaptureShards(t *testing.T) {
	f := newFake(t)
	names := slices.Sorted(maps.Keys(kinds))
	spec := captureSpec(config(), names...)

	type shard struct {
		begin, end uint32
		c          *connector
		streams    []string
	}
	shards := []*shard{{begin: 0, end: 0x7fffffff}, {begin: 0x80000000, end: 0xffffffff}}
	for _, sh := range shards {
		for _, s := range names {
			if k := flow.BindingKey(s); sh.begin <= k && k <= sh.end {
				sh.streams = append(sh.streams, s)
			}
		}
		if len(sh.streams) == 0 {
			t.Fatalf("shard %08x-%08x owns no stream; the test proves nothing", sh.begin, sh.end)
		}
		sh.c = start(t, f.env)
		sh.c.send(open(spec, sh.begin, sh.end, nil))
	}
	seen := map[string]int{}
	for _, sh := range shards {
		sh.c.waitFor(20*time.Second, "the shard's streams caught up", caughtUp(t, f, spec, sh.streams, nil, nil))
		requireClean(t, sh.c, sh.c.stop(0))
		streams := map[string]bool{}
		for _, d := range docs(t, spec, sh.c.responses()) {
			streams[d.stream] = true
			seen[d.stream+"/"+d.id]++
		}
		if got := slices.Sorted(maps.Keys(streams)); !slices.Equal(got, sh.streams) {
			t.Errorf("shard %08x-%08x captured %v, owns %v", sh.begin, sh.end, got, sh.streams)
		}
	}
	for _, s := range names {
		for id := range f.objects(s) {
			if n := seen[s+"/"+id]; n != 1 {
				t.Errorf("%s/%s captured %d times by the two shards", s, id, n)
			}
		}
	}

	t.Run("empty shard", func(t *testing.T) {
		f.ResetRequests()
		keys := []uint32{}
		for _, s := range names {
			keys = append(keys, flow.BindingKey(s))
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
		// The widest gap between two adjacent bindings' keys.
		var begin, end uint32
		for i := 1; i < len(keys); i++ {
			if keys[i]-keys[i-1] > end-begin+2 {
				begin, end = keys[i-1]+1, keys[i]-1
			}
		}
		c := start(t, f.env)
		c.send(open(spec, begin, end, nil))
		c.waitFor(5*time.Second, "Opened", func(r []*capture.Response) bool { return len(r) > 0 })
		c.send(&capture.Request{Acknowledge: &capture.Request_Acknowledge{Checkpoints: 1}}) // tolerated
		time.Sleep(200 * time.Millisecond)
		if code := c.stop(0); code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, c.Stderr())
		}
		if r := c.responses(); len(r) != 1 || r[0].Opened == nil {
			t.Errorf("an empty shard answered %v", r)
		}
		if n := f.RequestCount(); n != 0 {
			t.Errorf("an empty shard sent %d requests to Stripe", n)
		}
	})
}

// TestCaptureFailures: what the runtime sees when a capture cannot run: a
// non-zero exit and an error log line saying why.
func TestCaptureFailures(t *testing.T) {
	f := newFake(t)
	for name, tc := range map[string]struct {
		spec *pf.CaptureSpec
		then *capture.Request
		want string
	}{
		"invalid key":    {spec: captureSpec(config("client_secret", "sk_test_notthekey123"), "charges"), want: "invalid"},
		"unknown stream": {spec: captureSpec(config(), "charges", "nothing"), want: `there is no stream "nothing"`},
		"request after open": {spec: captureSpec(config(), "coupons"), want: "protocol error",
			then: &capture.Request{Spec: &capture.Request_Spec{ConnectorType: pf.CaptureSpec_IMAGE, ConfigJson: json.RawMessage("{}")}}},
	} {
		t.Run(name, func(t *testing.T) {
			c := start(t, f.env)
			c.send(open(tc.spec, 0, 0xffffffff, nil))
			if tc.then != nil {
				c.waitFor(5*time.Second, "Opened", func(r []*capture.Response) bool { return len(r) > 0 })
				c.send(tc.then)
			}
			if code := c.wait(10 * time.Second); code == 0 {
				t.Fatal("exit 0")
			}
			logs := c.logs()
			if last := logs[len(logs)-1]; last.Level != "error" || !strings.Contains(last.Message, tc.want) {
				t.Errorf("last log line %+v, want an error saying %q", last, tc.want)
			}
			if strings.Contains(c.Stderr(), "notthekey123") {
				t.Error("the key appears in the logs")
			}
			if r := c.responses(); len(r) > 0 && r[len(r)-1].Captured != nil {
				t.Error("the capture ended with an uncommitted document")
			}
		})
	}
}

// TestCaptureStreamFails: a stream that fails (a restricted key without the
// permission to read coupons) fails the capture: the documents of the other
// streams are committed by checkpoints, and the connector exits 1 with an
// error log line naming the stream, which Flow shows.
func TestCaptureStreamFails(t *testing.T) {
	const key = "rk_test_customersonly123"
	f := newFake(t, fakestripe.WithKeys(map[string]fakestripe.KeyInfo{key: {Kinds: []string{fakestripe.KindCustomer}}}))
	spec := captureSpec(config("client_secret", key), "customers", "coupons")
	c := start(t, f.env)
	c.send(open(spec, 0, 0xffffffff, nil))
	if code := c.wait(20 * time.Second); code != 1 {
		t.Fatalf("exit %d; stderr:\n%s", code, c.Stderr())
	}
	resps := c.responses()
	if len(resps) == 0 || resps[0].Opened == nil || resps[len(resps)-1].Checkpoint == nil {
		t.Fatalf("want Opened first and a checkpoint last; got %d responses", len(resps))
	}
	logs := c.logs()
	if last := logs[len(logs)-1]; last.Level != "error" || !strings.Contains(last.Message, "coupons") {
		t.Errorf("last log line %+v, want an error naming coupons", last)
	}
	if strings.Contains(c.Stderr(), "customersonly123") {
		t.Error("the key appears in the logs")
	}
}
