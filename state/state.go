// Package state owns per-stream checkpoints: their typed, versioned shape,
// and the parsing of the --state file in every form the platforms send.
//
// The invariant a checkpoint promises (see README, "State"):
//
//	Cursor.Created = C means every object of the stream with
//	start_date <= created < C has been emitted, by this run or an earlier one.
//
// Stripe lists newest first, so a run cannot advance C while it pages
// through a range: the newest objects come first and the older ones of the
// same range are still unread. The reader therefore splits the range into
// created windows, reads them oldest window first, and moves C to a window's
// upper bound only after every page of that window has been emitted. A read
// that resumes from C re-reads from C (minus the lookback window) and loses
// nothing; at worst it repeats the records of the window that was in flight.
//
// A change-tracked stream (one whose objects Stripe reports through events)
// also carries an Events cursor. Its invariant:
//
//	Events.Since = E means every event of the stream's types created before
//	E, and visible when it was read, has been applied: the current version
//	of the object it names has been emitted. Seen lists the events at or
//	after E - Overlap already applied, so that the next read can re-read
//	that overlap (events become visible a little after their created time)
//	without applying any event twice.
//
// While the stream backfills through its list endpoint, Since is the time the
// backfill began: changes made during the backfill are read from the events
// once it completes, so none is lost.
package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"

	"source-stripe/protocol"
)

// Version is the version of the state shape this connector writes:
// 1 had only the created cursor; 2 adds the events cursor.
const Version = 2

// Overlap is how far before Events.Since each read of events starts again:
// an event can become visible in the list a little after its created time.
const Overlap = 30 // seconds

// Stream is one stream's checkpoint.
type Stream struct {
	// Version of this shape; states written before versioning count as 1.
	Version int `json:"state_version"`
	// Created is the created cursor (epoch seconds): every object created
	// before it has been emitted. Nil when the stream has no cursor yet. For
	// a change-tracked stream it is the backfill's progress.
	Created *int64 `json:"created,omitempty"`
	// Events is the change-tracking cursor; nil before change tracking began.
	Events *Events `json:"events,omitempty"`
	// Backlog is what an interrupted read of a created range left unread;
	// nil when the read got to its end.
	Backlog *Backlog `json:"backlog,omitempty"`
}

// Backlog lists the windows of a created range not read yet. Windows are
// read in parallel and finish out of order, so Created alone (the lo of the
// oldest unfinished window) would make a resumed read repeat every window
// finished above it. The promise:
//
//	every object created in [Created, Upto) has been emitted, except those
//	in a window of Windows: lo <= created < hi and, when After is set, listed
//	after the object After (Stripe lists newest first).
type Backlog struct {
	Upto    int64    `json:"upto"`
	Windows []Window `json:"windows"`
}

// Window is a part of a created range: lo <= created < hi.
type Window struct {
	Lo    int64  `json:"lo"`
	Hi    int64  `json:"hi"`
	After string `json:"after,omitempty"`
}

// Events is where a change-tracked stream stands in Stripe's event list.
type Events struct {
	// Since: every event created before it has been applied (see the
	// package doc). During a backfill, the time the backfill began.
	Since int64 `json:"since"`
	// Following is true once the backfill is complete and the stream
	// follows events.
	Following bool `json:"following"`
	// Seen maps the ids of applied events created at or after
	// Since - Overlap to their created time.
	Seen map[string]int64 `json:"seen,omitempty"`
}

// Following reports whether the stream's backfill is done and it follows
// events.
func (s Stream) Following() bool { return s.Events != nil && s.Events.Following }

// Marshal renders s as the stream_state of a STATE message.
func (s Stream) Marshal() json.RawMessage {
	s.Version = Version
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a struct of ints cannot fail to marshal
	}
	return b
}

// Set holds the incoming state of every stream, by stream name.
type Set map[string]Stream

// maxCreated: any cursor past this (year 5138) is not a Stripe timestamp.
// Far-future cursors below it are legal: they mean "nothing new yet".
const maxCreated = 1 << 37

// Parse reads a --state document. It accepts
//   - an array of AirbyteStateMessage (STREAM entries, or one LEGACY entry),
//   - a single AirbyteStateMessage object,
//   - the legacy object {"<stream>": <stream state>}, which Estuary's
//     adapter sends (and {} on a first run),
//   - an empty document or null, meaning no state.
func Parse(raw []byte) (Set, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Set{}, nil
	}
	switch raw[0] {
	case '[':
		var msgs []json.RawMessage
		if err := json.Unmarshal(raw, &msgs); err != nil {
			return nil, protocol.ConfigErrorf("the state is not valid JSON: %v", err)
		}
		set := Set{}
		entry := map[string]int{} // stream -> the entry that gave its state
		for i, m := range msgs {
			if t := bytes.TrimSpace(m); len(t) == 0 || t[0] != '{' {
				return nil, protocol.ConfigErrorf("state entry %d must be an AirbyteStateMessage object, got %.40s", i, t)
			}
			one := Set{}
			if err := one.addMessage(m); err != nil {
				perr := protocol.AsError(err)
				return nil, &protocol.Error{FailureType: perr.FailureType, Message: fmt.Sprintf("state entry %d: %s", i, perr.Message), Err: perr.Err}
			}
			for name, st := range one {
				if j, dup := entry[name]; dup {
					return nil, protocol.ConfigErrorf("the state lists stream %q twice (entries %d and %d): keep the newest state of each stream", name, j, i)
				}
				entry[name] = i
				set[name] = st
			}
		}
		return set, nil
	case '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, protocol.ConfigErrorf("the state is not valid JSON: %v", err)
		}
		if isStateMessage(obj) {
			set := Set{}
			return set, set.addMessage(raw)
		}
		return parseLegacy(obj)
	}
	return nil, protocol.ConfigErrorf("the state must be a JSON array of state messages or an object keyed by stream name, got %.20q", raw)
}

// isStateMessage tells an AirbyteStateMessage from a legacy object whose
// keys are stream names (no stream is called "type").
func isStateMessage(obj map[string]json.RawMessage) bool {
	var t string
	return json.Unmarshal(obj["type"], &t) == nil && t != ""
}

func (set Set) addMessage(raw json.RawMessage) error {
	var msg protocol.State
	if err := json.Unmarshal(raw, &msg); err != nil {
		return protocol.ConfigErrorf("a state message is malformed: %v", err)
	}
	switch msg.Type {
	case protocol.StateTypeStream:
		if msg.Stream == nil || msg.Stream.StreamDescriptor.Name == "" {
			return protocol.ConfigErrorf("a STREAM state message has no stream.stream_descriptor.name")
		}
		name := msg.Stream.StreamDescriptor.Name
		s, err := parseStream(name, msg.Stream.StreamState)
		if err != nil {
			return err
		}
		set[name] = s
		return nil
	case protocol.StateTypeLegacy, "":
		if len(msg.Data) == 0 {
			return protocol.ConfigErrorf("a LEGACY state message has no data")
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(msg.Data, &obj); err != nil {
			return protocol.ConfigErrorf("a LEGACY state message's data must be an object keyed by stream name: %v", err)
		}
		legacy, err := parseLegacy(obj)
		if err != nil {
			return err
		}
		for k, v := range legacy {
			set[k] = v
		}
		return nil
	default:
		return protocol.ConfigErrorf("state messages of type %s are not supported: this connector writes per-stream (STREAM) state", msg.Type)
	}
}

func parseLegacy(obj map[string]json.RawMessage) (Set, error) {
	set := Set{}
	names := make([]string, 0, len(obj))
	for name := range obj {
		names = append(names, name)
	}
	sort.Strings(names) // report the first bad stream deterministically
	for _, name := range names {
		s, err := parseStream(name, obj[name])
		if err != nil {
			return nil, err
		}
		set[name] = s
	}
	return set, nil
}

// parseStream reads one stream's state strictly: a cursor of the wrong type
// or out of range is an error that names the stream, never silently zero.
func parseStream(name string, raw json.RawMessage) (Stream, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return Stream{Version: Version}, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return Stream{}, protocol.ConfigErrorf("the state of stream %q must be an object like {\"created\": 1700000000}, got %.40s", name, raw)
	}
	s := Stream{Version: Version}
	if len(fields) > 0 && fields["state_version"] == nil && fields["created"] == nil && fields["events"] == nil && fields["backlog"] == nil {
		var names []string
		for k := range fields {
			names = append(names, k)
		}
		sort.Strings(names)
		return Stream{}, protocol.ConfigErrorf("the state of stream %q has none of this connector's cursors, only '%s': it was written by another connector; clear the stream's state to read it again from start_date", name, strings.Join(names, "', '"))
	}
	if v, ok := fields["state_version"]; ok {
		if err := json.Unmarshal(v, &s.Version); err != nil || s.Version < 1 {
			return Stream{}, protocol.ConfigErrorf("the state of stream %q has an invalid state_version %s", name, v)
		}
		if s.Version > Version {
			return Stream{}, protocol.ConfigErrorf("the state of stream %q has state_version %d, newer than this connector understands (%d): run a newer version of the connector", name, s.Version, Version)
		}
	}
	if v, ok := fields["created"]; ok && string(v) != "null" {
		var f float64
		if err := json.Unmarshal(v, &f); err != nil {
			return Stream{}, protocol.ConfigErrorf("the state of stream %q has a 'created' cursor that is not a number of seconds: %s", name, v)
		}
		if f < 0 || f > maxCreated || f != math.Trunc(f) {
			return Stream{}, protocol.ConfigErrorf("the state of stream %q has a 'created' cursor out of range: %s (want whole epoch seconds)", name, v)
		}
		c := int64(f)
		s.Created = &c
	}
	if v, ok := fields["events"]; ok && string(v) != "null" {
		ev, err := parseEvents(name, v)
		if err != nil {
			return Stream{}, err
		}
		s.Events = ev
	}
	if v, ok := fields["backlog"]; ok && string(v) != "null" {
		var b Backlog
		if err := json.Unmarshal(v, &b); err != nil {
			return Stream{}, protocol.ConfigErrorf("the state of stream %q has a malformed 'backlog' (want {\"upto\": <seconds>, \"windows\": [{\"lo\": <seconds>, \"hi\": <seconds>, \"after\": <id>}]}): %v", name, err)
		}
		for _, w := range b.Windows {
			if w.Lo < 0 || w.Lo >= w.Hi || w.Hi > b.Upto || b.Upto > maxCreated {
				return Stream{}, protocol.ConfigErrorf("the state of stream %q has a 'backlog' window [%d, %d) outside [0, %d)", name, w.Lo, w.Hi, b.Upto)
			}
		}
		s.Backlog = &b
	}
	return s, nil
}

func parseEvents(name string, raw json.RawMessage) (*Events, error) {
	var ev struct {
		Since     *float64                   `json:"since"`
		Following *bool                      `json:"following"`
		Seen      map[string]json.RawMessage `json:"seen"`
	}
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, protocol.ConfigErrorf("the state of stream %q has a malformed 'events' cursor (want {\"since\": <seconds>, \"following\": <bool>, \"seen\": {<event id>: <seconds>}}): %v", name, err)
	}
	if ev.Since == nil || *ev.Since < 0 || *ev.Since > maxCreated || *ev.Since != math.Trunc(*ev.Since) {
		return nil, protocol.ConfigErrorf("the state of stream %q has an 'events.since' that is missing or not whole epoch seconds", name)
	}
	out := &Events{Since: int64(*ev.Since), Following: ev.Following != nil && *ev.Following}
	for id, v := range ev.Seen {
		var at float64
		if err := json.Unmarshal(v, &at); err != nil || at < 0 || at > maxCreated || at != math.Trunc(at) {
			return nil, protocol.ConfigErrorf("the state of stream %q has 'events.seen' entry %q that is not whole epoch seconds: %s", name, id, v)
		}
		if out.Seen == nil {
			out.Seen = map[string]int64{}
		}
		out.Seen[id] = int64(at)
	}
	return out, nil
}
