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

// Lister is all that stream code needs from Stripe: one page of a list.
type Lister interface {
	ListPage(ctx context.Context, path string, query url.Values) (stripeapi.Page, error)
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
	// Lookback is re-read before a saved cursor on every incremental run.
	Lookback time.Duration
	// Now is the clock; the upper bound of a run is its start time.
	Now func() time.Time
	// Concurrency is how many streams are read at once.
	Concurrency int
	// WindowRecords is about how many objects a created window holds, the
	// granularity of checkpoints (default 2,000).
	WindowRecords int
}

// ErrStreamsFailed is returned by Read when some streams failed; each of
// them has already been reported with a TRACE ERROR and INCOMPLETE status.
var ErrStreamsFailed = errors.New("some streams failed")

// ErrInterrupted is returned by Read when it was canceled (SIGINT, SIGTERM)
// before every stream finished.
var ErrInterrupted = &protocol.Error{FailureType: protocol.FailureTransient,
	Message: "the read was interrupted before every stream finished; the next sync resumes from the last checkpoint"}

// defaultConcurrency: streams read at once. Enough to overlap page latency
// without crowding a test-mode key's 25 requests/s.
const defaultConcurrency = 4

// Read reads every job, several streams at a time. A stream that fails is
// reported and ends INCOMPLETE while the others go on, except when the
// failure concerns the whole account (an invalid key): then every stream
// stops and that error is returned.
func (r *Reader) Read(ctx context.Context, jobs []Job) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	limit := r.Concurrency
	if limit <= 0 {
		limit = defaultConcurrency
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	until := r.Now().Unix()

	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	var fatal error
	for _, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			err := r.readStream(ctx, job, until)
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			failed = append(failed, job.Stream.Name)
			if perr := stripeapi.Classify(err, job.Stream.Name); perr.Stream == "" && fatal == nil {
				fatal = perr
				cancel(perr)
			}
		}()
	}
	wg.Wait()
	if fatal != nil {
		return fatal
	}
	if ctx.Err() != nil {
		return ErrInterrupted
	}
	if len(failed) > 0 {
		return fmt.Errorf("%w: %s", ErrStreamsFailed, strings.Join(failed, ", "))
	}
	return nil
}

// readStream runs one stream from STARTED to COMPLETE or INCOMPLETE.
func (r *Reader) readStream(ctx context.Context, job Job, until int64) (err error) {
	name := job.Stream.Name
	out := r.Out
	if err := out.StreamStatus(name, protocol.StreamStarted); err != nil {
		return err
	}
	run := &streamRun{Reader: r, job: job, until: until}
	if job.Incremental {
		run.cursor = job.State.Created
	}
	if job.Stream.Parent != "" {
		err = run.readChildren(ctx)
	} else {
		err = run.readCreated(ctx)
	}
	if err == nil {
		err = run.finish()
	}
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted, or another stream's fatal error stopped this
			// one: the cause is reported once, by Read's caller.
			_ = out.StreamStatus(name, protocol.StreamIncomplete)
			return context.Cause(ctx)
		}
		perr := stripeapi.Classify(err, name)
		if perr.Stream != "" {
			_ = out.TraceError(perr)
		}
		_ = out.StreamStatus(name, protocol.StreamIncomplete)
		return perr
	}
	return out.StreamStatus(name, protocol.StreamComplete)
}

// streamRun is the progress of one stream in one run.
type streamRun struct {
	*Reader
	job   Job
	until int64 // exclusive upper bound of created for this run

	cursor     *int64 // the checkpoint: everything created before it is emitted
	lastState  string // last STATE emitted this run; "" before the first
	sinceState int64  // records emitted since the last STATE
	announced  bool   // RUNNING has been emitted
}

// running emits RUNNING once, when the stream first gets an answer.
func (s *streamRun) running() error {
	if s.announced {
		return nil
	}
	s.announced = true
	return s.Out.StreamStatus(s.job.Stream.Name, protocol.StreamRunning)
}

func (s *streamRun) emit(data []byte) error {
	s.sinceState++
	return s.Out.Record(s.job.Stream.Name, data, s.Out.Now())
}

// checkpoint emits the stream's state, unless it would repeat the last
// STATE with no record in between.
func (s *streamRun) checkpoint() error {
	st := state.Stream{Version: state.Version}
	if s.cursor != nil {
		st = st.WithCreated(*s.cursor)
	}
	raw := st.Marshal()
	if string(raw) == s.lastState && s.sinceState == 0 {
		return nil
	}
	s.lastState = string(raw)
	count := s.sinceState
	s.sinceState = 0
	return s.Out.StreamState(s.job.Stream.Name, raw, count)
}

// finish emits the final state: every stream gets at least one STATE per
// run, also when it read nothing, and every record is covered by a STATE.
func (s *streamRun) finish() error {
	if err := s.running(); err != nil {
		return err
	}
	if s.lastState == "" || s.sinceState > 0 {
		return s.checkpoint()
	}
	return nil
}

// readCreated reads a top-level stream over created windows. In incremental
// mode it starts at the saved cursor minus the lookback window.
func (s *streamRun) readCreated(ctx context.Context) error {
	lo := s.StartDate.Unix()
	if s.cursor != nil {
		lo = max(lo, *s.cursor-int64(s.Lookback/time.Second))
	}
	st := s.job.Stream
	return s.readWindows(ctx, st.Path, st.Params, lo, s.until, s.emit, func(hi int64) error {
		// The cursor never moves back: a lookback window re-reads below it.
		if s.cursor == nil || hi > *s.cursor {
			s.cursor = &hi
		}
		return s.checkpoint()
	})
}

// readChildren reads every child of every parent created since start_date.
// Child streams are full refresh: their one STATE comes at the end.
func (s *streamRun) readChildren(ctx context.Context) error {
	child := s.job.Stream
	parent, ok := Lookup(child.Parent)
	if !ok {
		return fmt.Errorf("stream %s names an unknown parent stream %q", child.Name, child.Parent)
	}
	onParent := func(raw []byte) error {
		return s.readChildrenOf(ctx, child, raw)
	}
	return s.readWindows(ctx, parent.Path, parent.Params, s.StartDate.Unix(), s.until, onParent, func(int64) error { return nil })
}

func (s *streamRun) readChildrenOf(ctx context.Context, child Stream, parentRaw []byte) error {
	var parent map[string]json.RawMessage
	if err := json.Unmarshal(parentRaw, &parent); err != nil {
		return fmt.Errorf("decoding a %s object: %w", child.Parent, err)
	}
	var id string
	if err := json.Unmarshal(parent["id"], &id); err != nil || id == "" {
		return fmt.Errorf("a %s object has no id", child.Parent)
	}
	emit := func(data []byte) error {
		if child.AddParentID {
			data = withField(data, child.ParentIDField, id)
		}
		return s.emit(data)
	}
	// Parents embed the first page of some children: read the child
	// endpoint only when the embedded list is incomplete.
	if child.EmbeddedList != "" {
		var embedded struct {
			Data    []json.RawMessage `json:"data"`
			HasMore bool              `json:"has_more"`
		}
		if raw, ok := parent[child.EmbeddedList]; ok && json.Unmarshal(raw, &embedded) == nil && embedded.Data != nil && !embedded.HasMore {
			for _, item := range embedded.Data {
				if err := emit(item); err != nil {
					return err
				}
			}
			return nil
		}
	}
	path, query := child.Path, listQuery(child.Params)
	if child.ParentIDParam != "" {
		query.Set(child.ParentIDParam, id)
	} else {
		path = fillPathParam(path, id)
	}
	err := s.paginate(ctx, path, query, emit)
	if stripeapi.StatusOf(err) == 404 {
		// The parent was deleted between listing it and listing its
		// children: nothing is lost, there is nothing left to read.
		return s.Out.Log(protocol.LevelWarn, fmt.Sprintf("%s: skipping the children of %s %s, which no longer exists", child.Name, child.Parent, id))
	}
	return err
}

// fillPathParam replaces the path's {placeholder} with the parent id.
func fillPathParam(path, id string) string {
	open, end := strings.Index(path, "{"), strings.Index(path, "}")
	if open < 0 || end < open {
		return path
	}
	return path[:open] + url.PathEscape(id) + path[end+1:]
}

// withField returns the JSON object data with "field": value added first.
func withField(data []byte, field, value string) []byte {
	i := 0
	for i < len(data) && data[i] != '{' {
		i++
	}
	if i == len(data) {
		return data
	}
	kv, _ := json.Marshal(map[string]string{field: value}) // {"field":"value"}
	out := make([]byte, 0, len(data)+len(kv)+1)
	out = append(out, data[:i+1]...)
	out = append(out, kv[1:len(kv)-1]...)
	rest := data[i+1:]
	for j := 0; j < len(rest); j++ {
		if c := rest[j]; c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			continue
		} else if c != '}' {
			out = append(out, ',')
		}
		break
	}
	return append(out, rest...)
}
