package streams

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

// streamRun is the progress of one stream in one run: its statuses, its
// checkpoint and the records emitted since the last one.
type streamRun struct {
	*Reader
	job   Job
	until int64 // exclusive upper bound of created for the backfill
	pager *pager
	// lookback is re-read below the created cursor: the configured window
	// on a run's first read, none on the polls of follow mode.
	lookback time.Duration

	// mu guards what the windows read in parallel share: the statuses, the
	// checkpoint and the record count.
	mu      sync.Mutex
	cursor  *int64         // the created checkpoint: everything created before it is emitted
	backlog *state.Backlog // what above cursor is not read yet, when a read stopped early
	events  *state.Events  // change tracking; nil for streams without events and full refreshes

	started     bool
	announced   bool      // RUNNING has been emitted
	limitedAt   time.Time // when RATE_LIMITED was last reported
	lastState   string    // last STATE emitted this run; "" before the first
	lastStateAt time.Time // when it was emitted

	pending []event // events read for this stream, not yet applied
	// relisted: listNew has listed again below the cursor this run.
	relisted bool

	// riders are child streams whose backfill rides on this stream's: the
	// pages of parents read for this stream also give them their parents
	// (see shareParents). Only until the backfill ends.
	riders []*streamRun
	// dropped is why this rider stopped riding (guarded by mu): it failed
	// and its checkpoint no longer moves with its parent's.
	dropped error
	// rider is set on a stream riding on another. writing is then held
	// (read) while it writes a record and (write) to drop out, so that
	// no record of it follows its failure's INCOMPLETE: pages of parents
	// in flight still reach it, and what they would emit no STATE covers.
	rider   bool
	writing sync.RWMutex
	// failed ends the stream as failed (set by Read).
	failed func(error)
}

// dropOut stops a rider that failed from riding, and reports its failure.
func (s *streamRun) dropOut(err error) {
	s.writing.Lock()
	s.mu.Lock()
	first := s.dropped == nil
	if first {
		s.dropped = err
	}
	s.mu.Unlock()
	s.writing.Unlock()
	if first && s.failed != nil {
		s.failed(err)
	}
}

func (s *streamRun) droppedOut() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// crew is the stream and the streams riding on it.
func (s *streamRun) crew() []*streamRun { return append([]*streamRun{s}, s.riders...) }

func (r *Reader) newRun(job Job, until int64) *streamRun {
	run := &streamRun{Reader: r, job: job, until: until, lookback: r.Lookback}
	run.pager = &pager{client: r.Client, windowRecords: int64(r.WindowRecords), workers: r.Workers, slots: r.slots, onPage: run.runningAll, open: 1}
	if job.Incremental {
		run.cursor = job.State.Created
		run.backlog = job.State.Backlog
		if job.Stream.ChangeTracked() {
			run.events = job.State.Events
		}
	}
	return run
}

// changeTracked reports whether this run follows events after its backfill.
func (s *streamRun) changeTracked() bool { return s.job.Incremental && s.job.Stream.ChangeTracked() }

// start emits STARTED and runs the stream's first phase: its backfill, or
// its whole read for a stream without events.
func (s *streamRun) start(ctx context.Context) error {
	ctx = stripeapi.WithRateLimitNotice(ctx, func(resetAt time.Time) {
		for _, m := range s.crew() {
			m.rateLimited(resetAt)
		}
	})
	for _, m := range s.crew() {
		m.started = true
		if err := m.Out.StreamStatus(m.job.Stream.Name, protocol.StreamStarted); err != nil {
			return err
		}
	}
	switch {
	case s.changeTracked():
		return s.backfill(ctx)
	case s.job.Stream.Parent != "":
		return s.readChildren(ctx, s.startUnix(), s.until, noCheckpoints)
	default:
		return s.readCreated(ctx, s.until, listingDelay)
	}
}

// runningAll emits RUNNING for the stream and its riders.
func (s *streamRun) runningAll() error {
	for _, m := range s.crew() {
		if err := m.running(); err != nil {
			return err
		}
	}
	return nil
}

// running emits RUNNING once, when the stream first gets an answer.
func (s *streamRun) running() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.announced {
		return nil
	}
	s.announced = true
	return s.Out.StreamStatus(s.job.Stream.Name, protocol.StreamRunning)
}

// rateLimited reports that the stream waits on Stripe's rate limit, at most
// once a second.
func (s *streamRun) rateLimited(resetAt time.Time) {
	if s.rider { // (no status of a rider follows its INCOMPLETE either)
		s.writing.RLock()
		defer s.writing.RUnlock()
	}
	s.mu.Lock()
	now := s.Now()
	if s.dropped != nil || now.Sub(s.limitedAt) < time.Second {
		s.mu.Unlock()
		return
	}
	s.limitedAt = now
	s.mu.Unlock()
	_ = s.Out.StreamStatus(s.job.Stream.Name, protocol.StreamRunning, protocol.StatusReason{
		Type: "RATE_LIMITED", RateLimited: &protocol.RateLimited{QuotaReset: resetAt.UnixMilli()},
	})
}

// emit writes one record with the fields the connector adds.
func (s *streamRun) emit(data []byte, fields ...field) error {
	if s.rider {
		s.writing.RLock()
		defer s.writing.RUnlock()
		if s.droppedOut() != nil {
			return errDroppedOut // (its fetches of children stop)
		}
	}
	return s.Out.Record(s.job.Stream.Name, data, renderFields(fields), s.Out.Now())
}

var errDroppedOut = errors.New("the stream failed and stopped riding on its parent")

// How a read of created windows records its progress.
type checkpoints int

const (
	// withCheckpoints moves the cursor and emits a STATE as windows finish.
	withCheckpoints checkpoints = iota
	// quietly moves the cursor only: a STATE follows later.
	quietly
	// noCheckpoints keeps no cursor: a full refresh.
	noCheckpoints
)

// readRange reads the stream's created windows in [lo, hi), resuming the
// backlog an interrupted read saved, and records its progress as mode says.
// relist is how far below the backlog's upto to list again, as the caller
// does below the cursor (objects become listable a little late). When it
// stops early, the backlog it leaves is saved for the final STATE.
func (s *streamRun) readRange(ctx context.Context, path string, base url.Values, lo, hi, relist int64, emit func([]byte) error, mode checkpoints) error {
	queue, end := []window{{lo: lo, hi: hi}}, hi
	if mode != noCheckpoints {
		queue, end = s.plan(lo, hi, relist)
	}
	// The stream's riders read the same windows: their progress is its.
	move := func(c int64, backlog []window, checkpoint bool) error {
		for _, m := range s.crew() {
			m.mu.Lock()
			if m.dropped != nil {
				m.mu.Unlock()
				continue
			}
			m.moveLocked(c, end, backlog)
			var err error
			if checkpoint {
				err = m.checkpointLocked()
			}
			m.mu.Unlock()
			if err != nil {
				return err
			}
		}
		return nil
	}
	progress := func(c int64, backlog []window) error {
		if mode == noCheckpoints {
			return nil
		}
		return move(c, backlog, mode == withCheckpoints)
	}
	backlog, err := s.pager.readWindows(ctx, path, base, queue, end, emit, progress)
	if err != nil && mode != noCheckpoints {
		_ = move(lowestLo(backlog, end), backlog, false) // the final STATE follows
	}
	return err
}

// plan returns the windows to read for [lo, hi): a saved backlog, what lies
// past it (from relist below its upto), and what lies below it down to lo
// (a lookback); and where the range they are what is left of ends: hi, or
// the backlog's upto when that is later. (A read resumed within the second
// its backlog was saved, or on a clock behind the last one, must still
// claim all the backlog claimed: its checkpoints would otherwise give up
// ground, and the next read would list again what was read.)
func (s *streamRun) plan(lo, hi, relist int64) ([]window, int64) {
	b := s.backlog
	if b == nil {
		return []window{{lo: lo, hi: hi}}, hi
	}
	var queue []window
	for _, w := range b.Windows {
		queue = append(queue, window{lo: w.Lo, hi: w.Hi, after: w.After})
	}
	slices.SortFunc(queue, func(a, b window) int { return cmp.Compare(a.lo, b.lo) })
	// The last relist seconds below upto, around the windows (they are
	// read anyway), then what lies past upto.
	from := b.Upto - relist
	for _, w := range slices.Clone(queue) {
		if from < min(w.lo, b.Upto) {
			queue = append(queue, window{lo: from, hi: min(w.lo, b.Upto)})
		}
		from = max(from, w.hi)
	}
	if from < b.Upto {
		queue = append(queue, window{lo: from, hi: b.Upto})
	}
	end := max(hi, b.Upto)
	if b.Upto < hi {
		queue = append(queue, window{lo: b.Upto, hi: hi})
	}
	if first := lowestLo(queue, end); lo < first {
		queue = append(queue, window{lo: lo, hi: first})
	}
	return queue, end
}

// moveLocked records that everything below c, and above it all but backlog
// up to upto, has been emitted. The cursor never moves back: a lookback
// re-reads below it, and its windows promise nothing. Above the cursor, it
// moves up to the first window left to read, or to upto: a lookback that
// finishes last must not give up what the windows above it read.
func (s *streamRun) moveLocked(c, upto int64, backlog []window) {
	if s.cursor == nil || c > *s.cursor {
		s.cursor = &c
	}
	left := slices.DeleteFunc(slices.Clone(backlog), func(w window) bool { return w.hi <= *s.cursor })
	if next := lowestLo(left, upto); next > *s.cursor {
		s.cursor = &next
	}
	s.backlog = nil
	if len(left) > 0 {
		s.backlog = &state.Backlog{Upto: upto}
		for _, w := range left {
			s.backlog.Windows = append(s.backlog.Windows, state.Window{Lo: w.lo, Hi: w.hi, After: w.after})
		}
	}
}

func lowestLo(ws []window, hi int64) int64 {
	for _, w := range ws {
		hi = min(hi, w.lo)
	}
	return hi
}

// checkpoint emits the stream's state, unless it would repeat the last
// STATE with no record in between.
func (s *streamRun) checkpoint() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.checkpointLocked()
}

func (s *streamRun) checkpointLocked() error {
	st := state.Stream{Version: state.Version, Created: s.cursor, Events: s.events, Backlog: s.backlog}
	raw := st.Marshal()
	// (The writer's count, not one kept here: a record counted before it
	// is written could otherwise land after a STATE that was skipped.)
	if string(raw) == s.lastState && s.Out.Unstated(s.job.Stream.Name) == 0 {
		return nil
	}
	s.lastState = string(raw)
	s.lastStateAt = s.Now()
	return s.Out.StreamState(s.job.Stream.Name, raw)
}

// finalState emits the state at the end of a run: every stream gets at least
// one STATE per run, also when it read nothing, and every record is covered
// by a STATE. A record written before the last STATE is not always covered
// by it (its page was still being emitted), so the state is written again
// whenever it has moved since, even with no record in between.
func (s *streamRun) finalState() error { return s.checkpoint() }

// complete ends the stream successfully, with a STATE of where it ended
// (unless the last STATE says so already).
func (s *streamRun) complete() {
	_ = s.running()
	_ = s.checkpoint()
	_ = s.Out.StreamStatus(s.job.Stream.Name, protocol.StreamComplete)
}

// fail ends the stream INCOMPLETE, after a final STATE that covers what it
// emitted. It returns the error to report, or nil when the stream was only
// stopped: by an interruption, or by another stream's fatal error, which is
// reported once by Read's caller.
func (s *streamRun) fail(ctx context.Context, err error) *protocol.Error {
	name := s.job.Stream.Name
	if !s.started {
		s.started = true
		_ = s.Out.StreamStatus(name, protocol.StreamStarted)
	}
	_ = s.finalState()
	defer func() { _ = s.Out.StreamStatus(name, protocol.StreamIncomplete) }()
	if ctx.Err() != nil {
		return nil
	}
	perr := stripeapi.Classify(err, name)
	if perr.Stream != "" {
		_ = s.Out.TraceError(perr)
	}
	return perr
}

// readCreated reads a top-level stream over created windows up to hi. In
// incremental mode it starts at the saved cursor minus the lookback window.
func (s *streamRun) readCreated(ctx context.Context, hi int64, overlap int64) error {
	lo := s.startUnix()
	if s.cursor != nil {
		lo = max(lo, *s.cursor-max(int64(s.lookback/time.Second), overlap))
	}
	st := s.job.Stream
	emit := func(obj []byte) error { return s.emit(obj, s.updatedFromCreated(obj)...) }
	return s.readRange(ctx, st.Path, params(st.Params), lo, hi, overlap, emit, withCheckpoints)
}

// listingDelay: objects become listable a little after their created
// time. A run of a stream without events re-reads this much below its
// cursor (the duplicates are harmless), and follow mode reads up to this
// much before now.
const listingDelay = state.Overlap

// followCreated keeps reading a stream without events (balance
// transactions, events) every PollInterval in follow mode, until ctx is
// canceled. Each poll reads up to listingDelay before now; the first also
// re-reads listingDelay below the cursor the first read left.
func (s *streamRun) followCreated(ctx context.Context) error {
	overlap := int64(listingDelay)
	for {
		if err := s.finalState(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			if stopped(ctx) {
				s.complete() // stopped by the user: the stream is caught up
				return nil
			}
			return ctx.Err()
		case <-time.After(s.PollInterval):
		}
		s.lookback = 0
		hi := s.Now().Unix() - listingDelay
		if s.cursor != nil && hi <= *s.cursor && overlap == 0 {
			continue
		}
		err := s.readCreated(ctx, hi, overlap)
		overlap = 0
		if err != nil {
			if stopped(ctx) {
				s.complete()
				return nil
			}
			return fmt.Errorf("polling %s: %w", s.job.Stream.Name, err)
		}
	}
}
