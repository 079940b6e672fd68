package e2e

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// following reports whether every change-tracked stream has finished its
// backfill (its last STATE says it follows events).
func following(streams []string) func([]protocol.Message) bool {
	return func(msgs []protocol.Message) bool {
		done := map[string]bool{}
		for _, m := range msgs {
			if m.Type != protocol.TypeState {
				continue
			}
			var st struct{ Events *struct{ Following bool } }
			json.Unmarshal(m.State.Stream.StreamState, &st)
			done[m.State.Stream.StreamDescriptor.Name] = st.Events != nil && st.Events.Following
		}
		for _, s := range streams {
			if !done[s] {
				return false
			}
		}
		return true
	}
}

func records(msgs []protocol.Message) []protocol.Record {
	var out []protocol.Record
	for _, m := range msgs {
		if m.Type == protocol.TypeRecord {
			out = append(out, *m.Record)
		}
	}
	return out
}

// TestFollowCapturesEveryChange runs read --follow while a workload changes
// the fake, during the backfill and after it; on SIGTERM the connector ends
// with final states and exit 0, and replaying its records reproduces the
// fake exactly.
func TestFollowCapturesEveryChange(t *testing.T) {
	// Page latency stretches the backfill over the first changes.
	e := newEnv(t, fakestripe.WithLatency(15*time.Millisecond, 5*time.Millisecond))
	var tracked []string
	for s := range kindOf {
		if s != "events" && s != "balance_transactions" {
			tracked = append(tracked, s)
		}
	}
	all := append(slices.Clone(tracked), "events", "balance_transactions")
	p := testbin.Start(t, e.vars, "read", "--config", e.config(nil), "--catalog", catalogFile(t, protocol.SyncModeIncremental, all...),
		"--follow", "--poll-interval", "100ms")

	rng := rand.New(rand.NewPCG(3, 4))
	workload(e.fake, rng, 0) // while the backfill runs
	p.WaitFor(30*time.Second, "the end of every backfill", following(tracked))
	for round := 1; round < 4; round++ {
		workload(e.fake, rng, round)
		time.Sleep(250 * time.Millisecond)
	}
	// Changes arrive within a poll or two; give them a few.
	time.Sleep(time.Second)
	res := p.Stop(syscall.SIGTERM, 10*time.Second)
	requireExit(t, res, 0)
	for _, s := range all {
		st := res.Statuses()[s]
		if len(st) == 0 || st[len(st)-1] != protocol.StreamComplete {
			t.Errorf("%s: statuses %v, want COMPLETE at the end", s, st)
		}
	}
	if errs := res.Errors(); len(errs) > 0 {
		t.Fatalf("errors: %+v", errs)
	}
	rep := replica{}
	rep.apply(t, res.Records(""))
	requireReplicaMatches(t, e.fake, rep)

	// Every record is covered by a STATE: the counts add up, and the last
	// message of each stream's records is followed by a STATE.
	counted := 0.0
	for _, st := range res.States() {
		counted += st.SourceStats.RecordCount
	}
	if int(counted) != len(res.Records("")) {
		t.Errorf("states count %v records, %d were emitted", counted, len(res.Records("")))
	}
}

// TestFollowReadsLateEvents: an event that becomes visible after a poll
// already read past its second is still applied (the overlap), and an event
// already applied is not applied twice.
func TestFollowReadsLateEvents(t *testing.T) {
	e := newEnv(t)
	p := testbin.Start(t, e.vars, "read", "--config", e.config(nil), "--streams", "customers", "--follow", "--poll-interval", "100ms")
	p.WaitFor(10*time.Second, "the end of the backfill", following([]string{"customers"}))
	msgs, _ := p.Messages()
	before := len(records(msgs))

	// An update now, then one stamped 3 s ago: it shows up in the list
	// after the connector has polled past its second.
	ids := e.fake.IDs(fakestripe.KindCustomer)
	e.fake.Update(fakestripe.KindCustomer, ids[0], time.Time{}, map[string]any{"description": "now"})
	p.WaitFor(5*time.Second, "the first change", func(m []protocol.Message) bool { return len(records(m)) > before })
	time.Sleep(300 * time.Millisecond) // a few polls past it
	e.fake.Update(fakestripe.KindCustomer, ids[1], time.Now().Add(-3*time.Second), map[string]any{"description": "late"})
	p.WaitFor(5*time.Second, "the late change", func(m []protocol.Message) bool { return len(records(m)) > before+1 })
	time.Sleep(500 * time.Millisecond) // more polls: nothing is applied twice
	res := p.Stop(syscall.SIGINT, 10*time.Second)
	requireExit(t, res, 0)
	got := testbin.IDs(res.Records("customers"))[before:]
	if !slices.Equal(got, []string{ids[0], ids[1]}) {
		t.Fatalf("after the backfill: %v, want each changed customer once: %v", got, ids[:2])
	}
}
