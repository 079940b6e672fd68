package streams

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"source-stripe/internal/jsonscan"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

// event is what the connector reads of a Stripe event.
type event struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Data       struct {
		Object             json.RawMessage `json:"object"`
		PreviousAttributes json.RawMessage `json:"previous_attributes"`
	} `json:"data"`
}

// maxEventTypes: /v1/events filters on at most 20 types[]; a feed that
// needs more reads every event and picks its own.
const maxEventTypes = 20

// feed reads /v1/events once for every change-tracked stream whose backfill
// is done (its members) and hands each stream the events of its types. One
// reader for all streams keeps follow mode at one request per poll.
type feed struct {
	*Reader
	pager *pager

	mu     sync.Mutex
	joined []*streamRun // backfilled streams waiting to become members
	closed bool         // no stream will join any more
	wake   chan struct{}
}

func newFeed(r *Reader) *feed {
	// One worker: events are dispatched to the streams' batches in order.
	return &feed{Reader: r, pager: &pager{client: r.Client, windowRecords: int64(r.WindowRecords), workers: 1, slots: r.slots}, wake: make(chan struct{}, 1)}
}

// join adds a stream whose backfill is complete.
func (f *feed) join(run *streamRun) {
	f.mu.Lock()
	f.joined = append(f.joined, run)
	f.mu.Unlock()
	f.signal()
}

// close says every stream has finished its first phase.
func (f *feed) close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.signal()
}

func (f *feed) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *feed) take() (joined []*streamRun, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	joined, f.joined = f.joined, nil
	return joined, f.closed
}

// run applies the changes since each member's cursor: once after every
// backfill is done, or in follow mode every PollInterval until ctx ends.
func (f *feed) run(ctx context.Context, fail func(*streamRun, error)) {
	var members []*streamRun
	for {
		joined, closed := f.take()
		members = append(members, joined...)
		switch {
		case ctx.Err() != nil:
			if closed {
				f.stop(ctx, members, fail)
				return
			}
			<-f.wake // the other streams are stopping
			continue
		case !f.Follow && !closed:
			select {
			case <-f.wake:
			case <-ctx.Done():
			}
			continue
		}
		if len(members) > 0 {
			members = f.pass(ctx, members, fail)
		}
		if !f.Follow {
			for _, m := range members {
				m.complete()
			}
			return
		}
		select {
		case <-time.After(f.PollInterval):
		case <-ctx.Done():
		}
	}
}

// stop ends every member when the read stops: an interruption in follow
// mode is the normal end, so the streams are complete (caught up as of their
// last poll); otherwise they stopped short.
func (f *feed) stop(ctx context.Context, members []*streamRun, fail func(*streamRun, error)) {
	for _, m := range members {
		if f.Follow && stopped(ctx) {
			m.complete()
		} else {
			fail(m, ctx.Err())
		}
	}
}

// pass reads the events since the members' cursors and applies them. It
// returns the members that did not fail.
func (f *feed) pass(ctx context.Context, members []*streamRun, fail func(*streamRun, error)) []*streamRun {
	lo := members[0].events.Since
	var types []string
	for _, m := range members {
		lo = min(lo, m.events.Since)
		for _, t := range m.job.Stream.Events {
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	lo = max(0, lo-state.Overlap)
	query := url.Values{}
	if len(types) <= maxEventTypes {
		slices.Sort(types)
		query["types[]"] = types
	}
	// Up to and including the current second: an event of this second that
	// becomes visible later is read again within the overlap.
	hi := f.Now().Unix() + 1
	failed := map[*streamRun]bool{}
	for _, m := range members {
		if err := m.listNew(ctx); err != nil {
			if ctx.Err() != nil {
				return members
			}
			failed[m] = true
			fail(m, err)
		}
	}
	dispatch := func(raw []byte) error {
		var ev event
		if err := json.Unmarshal(raw, &ev); err != nil {
			return fmt.Errorf("decoding an event: %w", err)
		}
		for _, m := range members {
			if !failed[m] && m.wants(ev) {
				m.pending = append(m.pending, ev)
			}
		}
		return nil
	}
	done := func(whi int64, _ []window) error {
		for _, m := range members {
			if failed[m] {
				continue
			}
			if err := m.applyEvents(ctx, whi); err != nil {
				failed[m] = true
				fail(m, err)
			}
		}
		return nil
	}
	if _, err := f.pager.readWindows(ctx, "/v1/events", query, []window{{lo: lo, hi: hi}}, hi, dispatch, done); err != nil {
		for _, m := range members {
			m.pending = m.pending[:0]
		}
		if ctx.Err() != nil {
			return members // stopped: run ends them
		}
		for _, m := range members {
			if !failed[m] {
				failed[m] = true
				fail(m, err)
			}
		}
	}
	live := members[:0]
	for _, m := range members {
		if !failed[m] {
			live = append(live, m)
		}
	}
	return live
}

// listNew reads the objects created since the created cursor, for streams
// whose objects are born without an event. A run's first pass lists again
// listingDelay below the cursor, as readCreated does: an object listed a
// little after its created time may have been missed at the top of the
// backfill or of the last run, and no event brings it.
func (s *streamRun) listNew(ctx context.Context) error {
	st := s.job.Stream
	if !st.ListNew {
		return nil
	}
	lo, hi := s.startUnix(), s.Now().Unix()
	if s.cursor != nil {
		overlap := int64(0)
		if !s.relisted {
			overlap, s.relisted = listingDelay, true
		}
		lo = max(lo, *s.cursor-overlap)
	}
	// The cursor moves without a STATE of its own: the events that follow
	// in this pass checkpoint it.
	if st.Parent != "" {
		return s.readChildren(ctx, lo, hi, quietly)
	}
	emit := func(obj []byte) error { return s.emit(obj, s.updatedFromCreated(obj)...) }
	return s.readRange(ctx, st.Path, params(st.Params), lo, hi, 0, emit, quietly)
}

// wants reports whether ev is a change this stream has not applied yet.
func (s *streamRun) wants(ev event) bool {
	if !slices.Contains(s.job.Stream.Events, ev.Type) || ev.Created < s.events.Since-state.Overlap {
		return false
	}
	_, seen := s.events.Seen[ev.ID]
	return !seen
}

// applyEvents applies the pending events (all created before whi), moves
// the events cursor to whi and checkpoints.
func (s *streamRun) applyEvents(ctx context.Context, whi int64) error {
	// Only the events below whi: windows of events are read newest first
	// and split, so newer events may be pending already; they wait for
	// their own window's end, so that the events of one object are applied
	// in order and those of one second in one batch.
	all := s.pending
	var later []event
	s.pending = nil
	for _, ev := range all {
		if ev.Created < whi {
			s.pending = append(s.pending, ev)
		} else {
			later = append(later, ev)
		}
	}
	defer func() { s.pending = append(s.pending[:0], later...) }()
	// Oldest first, so that a later event about the same object wins.
	slices.SortStableFunc(s.pending, func(a, b event) int { return cmp.Compare(a.Created, b.Created) })
	var err error
	if s.job.Stream.Parent != "" {
		err = s.applyChildEvents(ctx)
	} else {
		err = s.applyObjectEvents(ctx)
	}
	if err != nil {
		return err
	}
	if s.events.Seen == nil {
		s.events.Seen = map[string]int64{}
	}
	for _, ev := range s.pending {
		s.events.Seen[ev.ID] = ev.Created
	}
	s.events.Since = max(s.events.Since, whi)
	for id, at := range s.events.Seen {
		if at < s.events.Since-state.Overlap {
			delete(s.events.Seen, id)
		}
	}
	// Following, a STATE goes out after a poll that found changes and at
	// least every Heartbeat; a one-off read checkpoints every window.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Follow && s.Out.Unstated(s.job.Stream.Name) == 0 && s.Now().Sub(s.lastStateAt) < s.Heartbeat {
		return nil
	}
	return s.checkpointLocked()
}

// change is the newest event about one object (or one parent) in a batch.
type change struct {
	ev event
	// tie is true when another event about the object shares ev's second:
	// which of them is newest is unknown, so the object is fetched.
	tie bool
}

// newest keeps the newest event per key, in the order keys first appear.
type newest struct {
	byKey map[string]*change
	order []string
}

func (n *newest) note(key string, ev event) {
	if n.byKey == nil {
		n.byKey = map[string]*change{}
	}
	c, listed := n.byKey[key]
	switch {
	case !listed:
		n.byKey[key] = &change{ev: ev}
		n.order = append(n.order, key)
	case c == nil: // forgotten, and noted again
		n.byKey[key] = &change{ev: ev}
	case ev.Created > c.ev.Created:
		c.ev, c.tie = ev, false
	case ev.Created == c.ev.Created:
		// Which of two events of one second is newer is unknown; a
		// deletion is final whatever its place.
		if !IsDeletion(c.ev.Type) {
			c.ev = ev
		}
		c.tie = true
	}
}

// forget drops key's change but keeps its place in order, so that a later
// note does not list it twice.
func (n *newest) forget(key string) {
	if _, listed := n.byKey[key]; listed {
		n.byKey[key] = nil
	}
}

// applyObjectEvents emits the current version of every object the pending
// events name, once per object however many events name it.
func (s *streamRun) applyObjectEvents(ctx context.Context) error {
	var changes newest
	for _, ev := range s.pending {
		if id := jsonscan.String(ev.Data.Object, "id"); id != "" {
			changes.note(id, ev)
		}
	}
	for _, id := range changes.order {
		c := changes.byKey[id]
		if IsDeletion(c.ev.Type) {
			if err := s.emitDeleted(c.ev.Data.Object, c.ev.Created); err != nil {
				return err
			}
			continue
		}
		obj := c.ev.Data.Object
		if c.tie || c.ev.APIVersion != stripeapi.APIVersion {
			// The payload is at another API version, or may not be the
			// newest: read the object as it is now.
			fetched, err := s.Client.Get(ctx, s.job.Stream.Path+"/"+url.PathEscape(id))
			switch {
			case stripeapi.StatusOf(err) == 404:
				// Gone: deleted since (its event may be in this batch or
				// the next; emitting the deletion now loses nothing).
				if err := s.emitDeleted(obj, c.ev.Created); err != nil {
					return err
				}
				continue
			case err != nil:
				return fmt.Errorf("fetching changed %s %s: %w", s.job.Stream.Name, id, err)
			case string(jsonscan.Member(fetched, "deleted")) == "true":
				if err := s.emitDeleted(obj, c.ev.Created); err != nil {
					return err
				}
				continue
			}
			obj = fetched
		}
		if err := s.emit(obj, s.updatedAt(obj, c.ev.Created)...); err != nil {
			return err
		}
	}
	return nil
}

// updatedAt gives a record from an event its updated cursor, unless Stripe's
// object has its own (products).
func (s *streamRun) updatedAt(obj []byte, at int64) []field {
	if s.job.Stream.OwnUpdated {
		return nil
	}
	return []field{intField(UpdatedField, at)}
}

// emitDeleted emits the last known version of a deleted object.
func (s *streamRun) emitDeleted(obj []byte, at int64, extra ...field) error {
	return s.emit(obj, append(append(extra, s.updatedAt(obj, at)...), field{DeletedField, trueJSON})...)
}

// applyChildEvents re-reads the children of every parent the pending events
// name, once per parent: a run after N changes costs O(N) requests.
// Children that disappear are emitted as deleted when Stripe says so: a
// child's own deletion event, a parent's deletion (for the children it
// embeds), or a parent update whose previous_attributes list children that
// are gone.
func (s *streamRun) applyChildEvents(ctx context.Context) error {
	child := s.job.Stream
	parent, _ := Lookup(child.Parent)
	childObject, parentObject := Endpoints[child.Path].Object, Endpoints[parent.Path].Object
	var parents newest
	for _, ev := range s.pending {
		obj := ev.Data.Object
		switch jsonscan.String(obj, "object") {
		case childObject:
			parentID := jsonscan.String(obj, child.ParentIDField)
			if parentID == "" {
				continue
			}
			if IsDeletion(ev.Type) {
				if err := s.emitDeleted(obj, ev.Created, s.parentIDField(parentID)...); err != nil {
					return err
				}
				continue
			}
			parents.note(parentID, ev)
		case parentObject:
			parentID := jsonscan.String(obj, "id")
			if parentID == "" {
				continue
			}
			gone := removedChildren(ev, child.EmbeddedList)
			if IsDeletion(ev.Type) {
				gone, _, _ = embedded(obj, child.EmbeddedList)
				parents.forget(parentID)
			} else {
				parents.note(parentID, ev)
			}
			for _, item := range gone {
				if err := s.emitDeleted(item, ev.Created, s.parentIDField(parentID)...); err != nil {
					return err
				}
			}
		}
	}
	for _, parentID := range parents.order {
		c := parents.byKey[parentID]
		if c == nil {
			continue
		}
		var parentRaw []byte
		if !c.tie && c.ev.APIVersion == stripeapi.APIVersion && jsonscan.String(c.ev.Data.Object, "object") == parentObject {
			parentRaw = c.ev.Data.Object
		}
		if err := s.readChildrenOf(ctx, parentID, parentRaw, []field{intField(UpdatedField, c.ev.Created)}); err != nil {
			return fmt.Errorf("re-reading the %s of changed %s %s: %w", child.Name, child.Parent, parentID, err)
		}
	}
	return nil
}

func (s *streamRun) parentIDField(parentID string) []field {
	if s.job.Stream.AddParentID {
		return []field{stringField(s.job.Stream.ParentIDField, parentID)}
	}
	return nil
}

// removedChildren returns the children an update removed from the parent's
// embedded list: listed in previous_attributes, absent now.
func removedChildren(ev event, field string) []json.RawMessage {
	if field == "" || len(ev.Data.PreviousAttributes) == 0 {
		return nil
	}
	before, _, ok := embedded(ev.Data.PreviousAttributes, field)
	if !ok {
		return nil
	}
	after, _, _ := embedded(ev.Data.Object, field)
	now := map[string]bool{}
	for _, item := range after {
		now[jsonscan.String(item, "id")] = true
	}
	var gone []json.RawMessage
	for _, item := range before {
		if id := jsonscan.String(item, "id"); id != "" && !now[id] {
			gone = append(gone, item)
		}
	}
	return gone
}
