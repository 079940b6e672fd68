package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// interruptStreams are read by the kill and shutdown tests: incremental,
// several checkpoints each.
var interruptStreams = []string{"charges", "customers", "payment_intents"}

// newInterruptEnv starts a fake holding enough objects, answering slowly
// enough, for a read to take about a second and checkpoint several times
// per stream: something to interrupt.
func newInterruptEnv(t *testing.T) *env {
	t.Helper()
	fake := fakestripe.New(fakestripe.WithLatency(2*time.Millisecond, 3*time.Millisecond))
	t.Cleanup(fake.Close)
	d := fakestripe.DefaultDataset()
	d.Start = d.End.Add(-365 * 24 * time.Hour)
	d.Counts = map[string]int{fakestripe.KindCharge: 6000, fakestripe.KindCustomer: 3500, fakestripe.KindPaymentIntent: 2500}
	d.BankAccountsPerCustomer, d.BalanceTransactionsPerCustomer, d.BigCustomerBalanceTransactions = 0, 0, 0
	fake.Seed(d)
	return &env{t: t, fake: fake, vars: []string{"STRIPE_API_BASE=" + fake.URL()}}
}

// runLog is what one read printed, per stream.
type runLog struct {
	// covered are the ids of records created before the cursor of the
	// stream's last STATE: its promise is that a read from it never needs
	// them again. uncovered are the others, which a read from it repeats.
	covered, uncovered map[string][]string
	last               map[string]protocol.State
	started            map[string]bool
	counted            map[string]float64 // sum of sourceStats.recordCount
	emitted            map[string]int
}

// analyze sorts a run's records by the last STATE of their stream, and
// checks what the STATEs promise: a record printed after its stream's last
// STATE lies at or past that STATE's cursor. (Windows are read side by
// side, so a record printed before a STATE may lie past it too.)
func analyze(p *problems, msgs []protocol.Message) runLog {
	log := runLog{covered: map[string][]string{}, uncovered: map[string][]string{}, last: map[string]protocol.State{},
		started: map[string]bool{}, counted: map[string]float64{}, emitted: map[string]int{}}
	type rec struct {
		id        string
		created   int64
		lastState bool // printed after the stream's last STATE
	}
	recs := map[string][]rec{}
	for _, m := range msgs {
		switch {
		case m.Type == protocol.TypeRecord:
			var r struct {
				ID      string `json:"id"`
				Created int64  `json:"created"`
			}
			json.Unmarshal(m.Record.Data, &r)
			recs[m.Record.Stream] = append(recs[m.Record.Stream], rec{id: r.ID, created: r.Created, lastState: true})
			log.emitted[m.Record.Stream]++
		case m.Type == protocol.TypeState:
			name := m.State.Stream.StreamDescriptor.Name
			for i := range recs[name] {
				recs[name][i].lastState = false
			}
			log.last[name] = *m.State
			if m.State.SourceStats != nil {
				log.counted[name] += m.State.SourceStats.RecordCount
			}
		case m.Type == protocol.TypeTrace && m.Trace.StreamStatus != nil && m.Trace.StreamStatus.Status == protocol.StreamStarted:
			log.started[m.Trace.StreamStatus.StreamDescriptor.Name] = true
		}
	}
	for name, rs := range recs {
		cursor, ok := createdCursor(log.last[name])
		backlog := backlogOf(log.last[name])
		for _, r := range rs {
			if ok && backlog.covers(r.id, r.created) {
				log.covered[name] = append(log.covered[name], r.id)
				if r.lastState {
					p.Errorf("%s: %s (created %d) follows the last STATE, whose backlog claims it was read before", name, r.id, r.created)
				}
				continue
			}
			if ok && r.created < cursor {
				log.covered[name] = append(log.covered[name], r.id)
				if r.lastState {
					p.Errorf("%s: %s (created %d) follows the last STATE, whose cursor %d claims it was read before", name, r.id, r.created, cursor)
				}
			} else {
				log.uncovered[name] = append(log.uncovered[name], r.id)
			}
		}
	}
	return log
}

// backlog is the part of a STATE that says which windows above its cursor
// a read left unread.
type backlog struct {
	Upto    int64
	Windows []struct {
		Lo, Hi int64
		After  string
	}
}

func backlogOf(st protocol.State) *backlog {
	var s struct{ Backlog *backlog }
	if st.Stream == nil || json.Unmarshal(st.Stream.StreamState, &s) != nil {
		return nil
	}
	return s.Backlog
}

// covers reports whether the object id, created at c above the cursor, was
// read according to the backlog: below its upto and outside its windows. A
// window continued after an object has read that object's second (its last
// one) up to that object: in the fake's order (newest first, then the
// greater id), that object and those of its second listed before it.
func (b *backlog) covers(id string, c int64) bool {
	if b == nil || c >= b.Upto {
		return false
	}
	for _, w := range b.Windows {
		if w.After != "" && c == w.Hi-1 {
			return id >= w.After
		}
		if w.Lo <= c && c < w.Hi {
			return false
		}
	}
	return true
}

// createdCursor reads the created cursor of a STATE, if it has one.
func createdCursor(st protocol.State) (int64, bool) {
	if st.Stream == nil {
		return 0, false
	}
	var s struct {
		Created *int64 `json:"created"`
	}
	if json.Unmarshal(st.Stream.StreamState, &s) != nil || s.Created == nil {
		return 0, false
	}
	return *s.Created, true
}

// stateFile writes the last STATE of every stream, as a platform keeps them.
func stateFile(t *testing.T, last map[string]protocol.State) string {
	var msgs []protocol.State
	for _, st := range last {
		msgs = append(msgs, st)
	}
	sort.Slice(msgs, func(i, j int) bool {
		return msgs[i].Stream.StreamDescriptor.Name < msgs[j].Stream.StreamDescriptor.Name
	})
	raw, _ := json.Marshal(msgs)
	return writeFile(t, "state.json", raw)
}

// TestKillAndResume kills the connector with SIGKILL at random moments,
// resumes each time from the last STATE it printed, and checks that no
// object is lost and that only records past the cursor of their stream's
// last STATE (the windows in flight) come back in a later run. A run that
// ends before its kill completes a sync; the next one starts over without
// state.
func TestKillAndResume(t *testing.T) {
	const kills = 10
	e := newInterruptEnv(t)
	cfg := e.config(nil)
	cat := catalogFile(t, protocol.SyncModeIncremental, interruptStreams...)

	// A clean read sets the pace: kills land within what is left of it.
	testbin.Path(t) // built before the clock starts
	began := time.Now()
	clean := e.run("read", "--config", cfg, "--catalog", cat)
	full := time.Since(began)
	requireExit(t, clean, 0)
	for _, stream := range interruptStreams {
		if got, want := sortedIDs(clean.Records(stream)), wantIDs(e.fake, stream); !slices.Equal(got, want) {
			t.Fatalf("%s: a clean read got %d of %d objects", stream, len(got), len(want))
		}
	}

	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 1))
	t.Logf("seed %d; a clean read takes %s", seed, full.Round(time.Millisecond))
	var last map[string]protocol.State
	var coveredIn map[string]map[string]int // stream -> id -> run whose STATE covered it
	union := map[string]map[string]bool{}   // over the runs since the last completed sync
	newSync := func() {
		last, coveredIn = map[string]protocol.State{}, map[string]map[string]int{}
		for _, s := range interruptStreams {
			coveredIn[s], union[s] = map[string]int{}, map[string]bool{}
		}
	}
	newSync()
	killed := 0
	for run := 1; ; run++ {
		args := []string{"read", "--config", cfg, "--catalog", cat}
		if len(last) > 0 {
			args = append(args, "--state", stateFile(t, last))
		}
		p := start(t, e.vars, args...)
		final := killed == kills
		var delay time.Duration
		if !final {
			// Streams are read side by side: the least advanced one sets
			// the time left.
			share := 0.0
			for _, stream := range interruptStreams {
				share = max(share, 1-float64(len(coveredIn[stream]))/float64(len(wantIDs(e.fake, stream))))
			}
			left := time.Duration(0.8 * float64(full) * share)
			delay = time.Duration(rng.Int64N(int64(max(left, 50*time.Millisecond))))
			time.Sleep(delay)
			p.signal(syscall.SIGKILL)
		}
		code := p.exit(time.Minute)
		msgs, cut := p.messages()
		if code != -1 && (code != 0 || len(cut) > 0) {
			t.Fatalf("run %d (not killed): exit %d, a cut-off last line %q; stderr:\n%s", run, code, cut, p.stderrText())
		}
		var pr problems
		log := analyze(&pr, msgs)
		for _, msg := range pr.list {
			t.Errorf("run %d: %s", run, msg)
		}
		for _, stream := range interruptStreams {
			var again []string
			for _, id := range append(append([]string(nil), log.covered[stream]...), log.uncovered[stream]...) {
				if earlier, ok := coveredIn[stream][id]; ok {
					again = append(again, fmt.Sprintf("%s (covered in run %d)", id, earlier))
				}
				union[stream][id] = true
			}
			if len(again) > 0 {
				began := "no state"
				if st, ok := last[stream]; ok {
					began = string(st.Stream.StreamState)
				}
				t.Errorf("run %d: %s: %d objects again that an earlier STATE covered, the first %s; the run began from %s",
					run, stream, len(again), again[0], began)
			}
			for _, id := range log.covered[stream] {
				coveredIn[stream][id] = run
			}
		}
		for name, st := range log.last {
			last[name] = st
		}
		t.Logf("run %d: kill after %s: exit %d, %d messages, %d records past the last cursor, %d bytes of a cut line",
			run, delay.Round(time.Millisecond), code, len(msgs), countAll(log.uncovered), len(cut))
		if code == -1 {
			killed++
			continue
		}
		// The sync completed: together, its runs read every object.
		for _, stream := range interruptStreams {
			var got []string
			for id := range union[stream] {
				got = append(got, id)
			}
			sort.Strings(got)
			if want := wantIDs(e.fake, stream); !slices.Equal(got, want) {
				t.Errorf("run %d: %s: the runs since the last completed sync read %d distinct objects, the fake holds %d", run, stream, len(got), len(want))
			}
		}
		if final {
			break
		}
		newSync()
	}
}

func countAll(m map[string][]string) int {
	n := 0
	for _, ids := range m {
		n += len(ids)
	}
	return n
}

// TestGracefulShutdown interrupts a read with SIGTERM or SIGINT: the
// connector ends within seconds with exit code 0, after a STATE of every
// stream it started that covers every record it emitted, and a read from
// those states gets the rest.
func TestGracefulShutdown(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			e := newInterruptEnv(t)
			cfg := e.config(nil)
			cat := catalogFile(t, protocol.SyncModeIncremental, interruptStreams...)
			total := 0
			for _, s := range interruptStreams {
				total += len(e.fake.IDs(kindOf[s].Kind))
			}
			p := start(t, e.vars, "read", "--config", cfg, "--catalog", cat)
			if !p.waitUntil(time.Minute, func(records, states int) bool { return states >= 1 && records >= 500 }) {
				t.Fatal("the read ended before it could be interrupted")
			}
			p.signal(sig)
			sent := time.Now()
			code := p.exit(30 * time.Second)
			took := time.Since(sent)
			msgs, cut := p.messages()
			res := p.result(code)

			expect(t, func(pr *problems) {
				if code != 0 {
					pr.Errorf("exit code %d after %s, want 0", code, sig)
				}
				if took > 5*time.Second {
					pr.Errorf("exited %s after %s, want within 5s", took.Round(time.Millisecond), sig)
				}
				if len(cut) > 0 {
					pr.Errorf("the last line is cut off: %q", cut)
				}
				if n := len(res.Records("")); n >= total {
					pr.Errorf("read all %d records before the signal: the test proves nothing", n)
				}
				log := analyze(pr, msgs)
				defer func() {
					if !pr.ok() {
						pr.Errorf("stderr:\n%s", res.Stderr)
					}
				}()
				for stream := range log.started {
					if _, ok := log.last[stream]; !ok {
						pr.Errorf("%s started but has no STATE", stream)
					}
					if n := len(log.uncovered[stream]); n > 0 {
						pr.Errorf("%s: %d records past the cursor of its last STATE, the first %s; the STATE: %s", stream, n, log.uncovered[stream][0], log.last[stream].Stream.StreamState)
					}
					if int(log.counted[stream]) != log.emitted[stream] {
						pr.Errorf("%s: the STATEs count %v records, %d were emitted", stream, log.counted[stream], log.emitted[stream])
					}
				}
				if !pr.ok() {
					return
				}
				// The states cover exactly what was emitted: a read from
				// them gets the rest, and nothing twice.
				again := e.run("read", "--config", cfg, "--catalog", cat, "--state", stateFile(t, log.last))
				if again.ExitCode != 0 {
					pr.Errorf("the read after the interruption exits %d", again.ExitCode)
				}
				for _, stream := range interruptStreams {
					got := append(testbin.IDs(res.Records(stream)), testbin.IDs(again.Records(stream))...)
					sort.Strings(got)
					if want := wantIDs(e.fake, stream); !slices.Equal(got, want) {
						pr.Errorf("%s: the two reads got %d records (duplicates included), the fake holds %d", stream, len(got), len(want))
					}
				}
			})
		})
	}
}
