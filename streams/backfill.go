package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"source-stripe/internal/jsonscan"
	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/stripeapi"
)

// backfill reads a change-tracked stream's objects through its list
// endpoint, unless an earlier run finished that and the stream now follows
// events. The events cursor starts at the backfill's start, so that changes
// made while it runs are applied after it.
func (s *streamRun) backfill(ctx context.Context) error {
	// Riders share the backfill only: then each stream reads on its own
	// (a parent's new objects are not its riders' progress).
	defer func() { s.riders = nil }()
	now := s.Now() // one clock for the crew: they all reset or none does
	for _, m := range s.crew() {
		m.prepareBackfill(now)
	}
	if s.events.Following {
		return nil // (riders share the state, so they follow too)
	}
	if err := s.readCreatedTracked(ctx); err != nil {
		return err
	}
	for _, m := range s.crew() {
		if m.droppedOut() != nil {
			continue
		}
		m.events.Following = true
		if err := m.checkpoint(); err != nil {
			return err
		}
	}
	return nil
}

// prepareBackfill gives the stream an events cursor, and drops a state whose
// events are older than Stripe keeps.
func (s *streamRun) prepareBackfill(now time.Time) {
	if s.events != nil && time.Unix(s.events.Since, 0).Before(now.Add(-eventRetention)) {
		s.Out.Log(protocol.LevelWarn, fmt.Sprintf("%s: the saved events cursor (%s) is older than the 30 days Stripe keeps events, so changes since then cannot all be read: reading the whole stream again",
			s.job.Stream.Name, time.Unix(s.events.Since, 0).UTC().Format(time.RFC3339)))
		s.events, s.cursor, s.backlog = nil, nil, nil
	}
	if s.events == nil {
		// A state without an events cursor (a first run, or a bare created
		// cursor) follows events from the read's start: the backfill reads
		// objects created before it, however long this stream waited for
		// its turn.
		s.events = &state.Events{Since: s.until}
	}
}

// readCreatedTracked is the backfill of a change-tracked stream: records get
// their updated cursor, there is no lookback (events cover changes), and the
// created cursor checkpoints every window. For a child stream the windows
// are its parents', and the cursor says whose children have been emitted.
func (s *streamRun) readCreatedTracked(ctx context.Context) error {
	lo := s.startUnix()
	if s.cursor != nil {
		lo = max(lo, *s.cursor)
	}
	st := s.job.Stream
	if st.Parent != "" {
		return s.readChildren(ctx, lo, s.until, withCheckpoints)
	}
	emit := func(obj []byte) error { return s.emit(obj, s.updatedFromCreated(obj)...) }
	if len(s.riders) > 0 {
		emit = s.withRiders(ctx, emit)
		for _, r := range s.riders {
			if r.job.Stream.requestPerParent() {
				s.pager.fetchesChildren()
			}
		}
	}
	return s.readRange(ctx, st.Path, params(st.Params), lo, s.until, 0, emit, withCheckpoints)
}

// withRiders returns emit, which also hands each parent to the riders. A
// rider that fails drops out (its checkpoint stays where it was, and it is
// reported failed at once) and the others go on, as they would have on
// their own. A read that is stopped stops them all: no rider drops out,
// so they keep the same checkpoint, and ride together again next time.
func (s *streamRun) withRiders(ctx context.Context, emit func([]byte) error) func([]byte) error {
	onParents := make([]func([]byte) error, len(s.riders))
	for i, r := range s.riders {
		var err error
		if onParents[i], err = r.childrenOfParent(ctx); err != nil {
			r.dropOut(err)
		}
	}
	return func(obj []byte) error {
		if err := emit(obj); err != nil {
			return err
		}
		for i, r := range s.riders {
			if r.droppedOut() != nil {
				continue
			}
			if err := onParents[i](obj); err != nil {
				if ctx.Err() != nil {
					return err // stopped: this page counts for no one
				}
				r.dropOut(err)
			}
		}
		return nil
	}
}

// updatedFromCreated gives a record read from a list its updated cursor: its
// creation time, unless Stripe's object has its own updated (products).
func (s *streamRun) updatedFromCreated(obj []byte) []field {
	if !s.job.Stream.ChangeTracked() || s.job.Stream.OwnUpdated {
		return nil
	}
	return []field{intField(UpdatedField, creationOf(obj, s.job.Stream.Cursor))}
}

// readChildren reads every child of every parent created in [lo, hi),
// window of parents by window, recording progress as mode says.
func (s *streamRun) readChildren(ctx context.Context, lo, hi int64, mode checkpoints) error {
	onParent, err := s.childrenOfParent(ctx)
	if err != nil {
		return err
	}
	parent, _ := Lookup(s.job.Stream.Parent)
	if s.job.Stream.requestPerParent() {
		s.pager.fetchesChildren()
	}
	return s.readRange(ctx, parent.Path, params(parent.Params), lo, hi, 0, onParent, mode)
}

// childrenOfParent returns what a child stream does with each parent
// object read: emit its children.
func (s *streamRun) childrenOfParent(ctx context.Context) (func(parent []byte) error, error) {
	child := s.job.Stream
	parent, ok := Lookup(child.Parent)
	if !ok {
		return nil, fmt.Errorf("stream %s names an unknown parent stream %q", child.Name, child.Parent)
	}
	return func(raw []byte) error {
		id := jsonscan.String(raw, "id")
		if id == "" {
			return fmt.Errorf("a %s object has no id", child.Parent)
		}
		var updated []field
		if s.changeTracked() || child.ChangeTracked() {
			created, _ := jsonscan.Int(raw, parent.Cursor)
			updated = []field{intField(UpdatedField, created)}
		}
		return s.readChildrenOf(ctx, id, raw, updated)
	}, nil
}

// readChildrenOf emits the children of one parent: from the list the parent
// embeds when it is complete, else from the child endpoint.
func (s *streamRun) readChildrenOf(ctx context.Context, parentID string, parentRaw []byte, fields []field) error {
	child := s.job.Stream
	if child.AddParentID {
		fields = append([]field{stringField(child.ParentIDField, parentID)}, fields...)
	}
	emit := func(data []byte) error { return s.emit(data, fields...) }
	if items, complete, ok := embedded(parentRaw, child.EmbeddedList); ok && complete {
		for _, item := range items {
			if err := emit(item); err != nil {
				return err
			}
		}
		return nil
	}
	path, query := child.Path, params(child.Params)
	if child.ParentIDParam != "" {
		query.Set(child.ParentIDParam, parentID)
	} else {
		path = fillPathParam(path, parentID)
	}
	err := s.pager.paginate(ctx, path, listQuery(query), emit)
	if stripeapi.StatusOf(err) == 404 {
		// The parent was deleted between listing it and listing its
		// children: nothing is lost, there is nothing left to read.
		return s.Out.Log(protocol.LevelWarn, fmt.Sprintf("%s: skipping the children of %s %s, which no longer exists", child.Name, child.Parent, parentID))
	}
	return err
}

// embedded returns the children a parent embeds in field (a list with
// data and has_more), and whether that list is complete. The items are
// sub-slices of parent: nothing is decoded or copied.
func embedded(parent []byte, field string) (items []json.RawMessage, complete, ok bool) {
	if field == "" {
		return nil, false, false
	}
	list := jsonscan.Member(parent, field)
	if list == nil {
		return nil, false, false
	}
	var data []byte
	complete = true
	if !jsonscan.Members(list, func(key, value []byte) bool {
		switch string(key) {
		case "data":
			data = value
		case "has_more":
			complete = string(value) != "true"
		}
		return true
	}) || data == nil {
		return nil, false, false
	}
	err := jsonscan.Elements(data, func(item []byte) error {
		items = append(items, item)
		return nil
	})
	return items, complete, err == nil
}

// fillPathParam replaces the path's {placeholder} with the parent id.
func fillPathParam(path, id string) string {
	open, end := strings.Index(path, "{"), strings.Index(path, "}")
	if open < 0 || end < open {
		return path
	}
	return path[:open] + url.PathEscape(id) + path[end+1:]
}
