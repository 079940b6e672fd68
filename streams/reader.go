package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

// Lister is all that stream code needs from Stripe: pages of a list, and one
// object by path.
type Lister interface {
	ListPage(ctx context.Context, path string, query url.Values) (stripeapi.Page, error)
	Get(ctx context.Context, path string) (json.RawMessage, error)
}

// Job is one configured stream to read.
type Job struct {
	Stream Stream
	// Incremental is true when the platform asked for an incremental sync;
	// otherwise the stream is read in full from start_date and State is
	// ignored.
	Incremental bool
	// State is the stream's saved checkpoint (zero when there is none).
	State state.Stream
}

// Reader reads streams from Stripe and writes their records and checkpoints.
type Reader struct {
	Client Lister
	Out    *protocol.Writer
	// StartDate is the oldest created time to read.
	StartDate time.Time
	// Lookback is re-read before a saved created cursor on every
	// incremental run of a stream without events.
	Lookback time.Duration
	// Now is the clock; the upper bound of a backfill is the run's start.
	Now func() time.Time
	// Concurrency is how many streams are read at once.
	Concurrency int
	// Workers is how many windows of one stream are read at once.
	Workers int
	// MaxPages bounds the pages being fetched or emitted at once, over
	// every stream: the connector's memory and its requests in flight.
	MaxPages int

	slots chan struct{}
	// WindowRecords is about how many objects a created window holds, the
	// granularity of checkpoints (default 2,000).
	WindowRecords int
	// Follow keeps reading changes after the backfill, every PollInterval,
	// until the context is canceled.
	Follow       bool
	PollInterval time.Duration
	// Heartbeat bounds the time between two STATEs of a following stream
	// that sees no change.
	Heartbeat time.Duration
}

// Defaults.
const (
	// Up to defaultMaxPages pages in flight over every stream: enough to
	// fill 100 requests/s when pages take 400 ms, with memory for as many
	// pages (a page is a few hundred kilobytes). The pacer keeps the rate
	// under the budget; streams and their workers only bound how the pages
	// are shared out, so that one large stream alone can fill them.
	defaultConcurrency  = 8
	defaultWorkers      = 32
	defaultMaxPages     = 40
	DefaultPollInterval = 500 * time.Millisecond
	defaultHeartbeat    = 60 * time.Second
	// eventRetention: Stripe keeps events 30 days. An events cursor older
	// than this (30 days less a day of margin) may have lost events, so the
	// stream backfills again instead.
	eventRetention = 29 * 24 * time.Hour
)

// ErrStreamsFailed is returned by Read when some streams failed; each of
// them has already been reported with a TRACE ERROR and INCOMPLETE status.
var ErrStreamsFailed = errors.New("some streams failed")

// ErrInterrupted is returned by Read when it was stopped (SIGINT, SIGTERM)
// before every stream finished. Every stream has emitted a final STATE
// covering the records it emitted.
var ErrInterrupted = errors.New("the read was interrupted before every stream finished; the next sync resumes from the last checkpoint")

// startUnix is the oldest created time read, in epoch seconds: StartDate,
// or 1970 for an earlier one (Stripe holds nothing older, and a state's
// cursor is never negative).
func (r *Reader) startUnix() int64 { return max(0, r.StartDate.Unix()) }

// Read reads every job, several streams at a time, then (for change-tracked
// streams) the changes since their cursors; with Follow it keeps reading
// changes until ctx is canceled, which is then the normal way to stop. A
// stream that fails is reported and ends INCOMPLETE while the others go on,
// except when the failure concerns the whole account (an invalid key): then
// every stream stops and that error is returned.
func (r *Reader) Read(ctx context.Context, jobs []Job) error {
	r.setDefaults()
	work, stopWork := context.WithCancelCause(ctx)
	defer stopWork(nil)
	until := r.Now().Unix()

	var mu sync.Mutex
	var failed []string
	var fatal error
	fail := func(run *streamRun, err error) {
		mu.Lock()
		defer mu.Unlock()
		if perr := run.fail(work, err); perr != nil {
			failed = append(failed, run.job.Stream.Name)
			if perr.Stream == "" && fatal == nil {
				fatal = perr
				stopWork(perr)
			}
		}
	}

	feed := newFeed(r)
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		feed.run(work, fail)
	}()

	leads := shareParents(r, jobs, until)
	// The streams read at once share the page slots from their first round.
	atOnce := max(1, min(r.Concurrency, len(leads)))
	for _, lead := range leads {
		for _, run := range lead.crew() {
			run.pager.open = (r.MaxPages + atOnce - 1) / atOnce
			run.failed = func(err error) { fail(run, err) }
		}
	}
	sem := make(chan struct{}, r.Concurrency)
	var wg sync.WaitGroup
	for _, lead := range leads {
		wg.Add(1)
		crew := lead.crew()
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-work.Done():
				for _, run := range crew {
					fail(run, work.Err())
				}
				return
			}
			leadErr := lead.start(work)
			<-sem
			for _, run := range crew {
				err := leadErr
				switch {
				case run.droppedOut() != nil:
					// a rider that failed on its own: reported already
				case err != nil:
					fail(run, err)
				case run.changeTracked():
					feed.join(run)
				case r.Follow && run.job.Incremental:
					if err := run.followCreated(work); err != nil {
						fail(run, err)
					}
				default:
					run.complete()
				}
			}
		}()
	}
	wg.Wait()
	feed.close()
	<-feedDone

	switch {
	case fatal != nil:
		return fatal
	case len(failed) > 0:
		return fmt.Errorf("%w: %s", ErrStreamsFailed, strings.Join(failed, ", "))
	case ctx.Err() != nil && !r.Follow:
		return ErrInterrupted
	}
	return nil
}

// shareParents makes the runs of the jobs, and lets each child stream
// whose parent stream is read too ride on the parent's backfill when both
// start it from the same state (a first sync, typically): one list of
// invoices then gives both the invoices and their lines, where each stream
// would list them. It returns the runs to start; riders start with theirs.
func shareParents(r *Reader, jobs []Job, until int64) []*streamRun {
	var runs []*streamRun
	byName := map[string]*streamRun{}
	for _, job := range jobs {
		run := r.newRun(job, until)
		runs = append(runs, run)
		byName[job.Stream.Name] = run
	}
	var leads []*streamRun
	for _, run := range runs {
		if lead := byName[run.job.Stream.Parent]; lead != nil && sameBackfill(lead, run) {
			lead.riders = append(lead.riders, run)
			run.rider = true
			continue
		}
		leads = append(leads, run)
	}
	return leads
}

// sameBackfill reports whether a parent and a child stream have the same
// backfill still to do: both change-tracked, from the same state, not yet
// following events.
func sameBackfill(parent, child *streamRun) bool {
	return parent.job.Stream.Parent == "" && parent.changeTracked() && child.changeTracked() &&
		!parent.job.State.Following() &&
		string(parent.job.State.Marshal()) == string(child.job.State.Marshal())
}

// stopped reports whether ctx ended because the read was stopped from
// outside (SIGINT, SIGTERM), not by a stream's fatal error.
func stopped(ctx context.Context) bool {
	var fatal *protocol.Error
	return ctx.Err() != nil && !errors.As(context.Cause(ctx), &fatal)
}

func (r *Reader) setDefaults() {
	if r.Concurrency <= 0 {
		r.Concurrency = defaultConcurrency
	}
	if r.Workers <= 0 {
		r.Workers = defaultWorkers
	}
	if r.MaxPages <= 0 {
		r.MaxPages = defaultMaxPages
	}
	r.slots = make(chan struct{}, r.MaxPages)
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.PollInterval <= 0 {
		r.PollInterval = DefaultPollInterval
	}
	if r.Heartbeat <= 0 {
		r.Heartbeat = defaultHeartbeat
	}
	if r.WindowRecords <= 0 {
		r.WindowRecords = defaultWindowRecords
	}
}
