package flow

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"source-stripe/protocol"
	"source-stripe/streams"
)

// translator turns the Airbyte messages of the read pipeline into Flow
// responses:
//
//	RECORD        → captured{binding, doc}, doc being the record's data with _meta.op
//	STATE         → checkpoint{state: {updated: {<stateKey>: patch}, mergePatch: true}}
//	LOG           → a log line on stderr
//	TRACE ERROR   → a log line on stderr, and the capture stops and fails
//	STREAM_STATUS → dropped: Flow has no equivalent
//
// A STREAM STATE comes after the records it covers, so each record is
// followed by a checkpoint; finish adds one in case the read ended without.
type translator struct {
	out  *responseWriter
	log  *logger
	fail func(error) // stops the capture with an error

	bindings map[string]*capturedBinding // by stream name

	docsSinceCheckpoint int
	docs, checkpoints   int64
}

// capturedBinding is a binding this shard captures.
type capturedBinding struct {
	index    int // in the Open request's bindings
	stream   streams.Stream
	stateKey string
	state    any // its last checkpointed state, decoded
}

// run translates every line of r until EOF. It returns only an error of
// stdout: problems of the read are reported through fail.
func (t *translator) run(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20) // one Stripe object per line
	for sc.Scan() {
		if err := t.translate(sc.Bytes()); err != nil {
			if errors.Is(err, errStdout) {
				return err
			}
			t.fail(err)
		}
	}
	if err := sc.Err(); err != nil {
		t.fail(fmt.Errorf("reading the Airbyte messages: %w", err))
	}
	return nil
}

var errStdout = errors.New("writing to stdout")

func (t *translator) translate(line []byte) error {
	var m protocol.Message
	if err := json.Unmarshal(line, &m); err != nil {
		return fmt.Errorf("the read emitted a line that is not an Airbyte message (%v): %.200s", err, line)
	}
	switch {
	case m.Type == protocol.TypeRecord && m.Record != nil:
		return t.record(m.Record)
	case m.Type == protocol.TypeState && m.State != nil:
		return t.state(m.State)
	case m.Type == protocol.TypeLog && m.Log != nil:
		t.log.log(airbyteLevel(m.Log.Level), m.Log.Message)
	case m.Type == protocol.TypeTrace && m.Trace != nil && m.Trace.Type == protocol.TraceError && m.Trace.Error != nil:
		e := m.Trace.Error
		msg := e.Message
		if e.StreamDescriptor != nil && e.StreamDescriptor.Name != "" && !strings.Contains(msg, e.StreamDescriptor.Name) {
			msg = fmt.Sprintf("stream %s: %s", e.StreamDescriptor.Name, msg)
		}
		if e.InternalMessage != "" && e.InternalMessage != e.Message {
			t.log.log(levelDebug, "internal error: "+e.InternalMessage)
		}
		t.fail(&protocol.Error{Message: msg, FailureType: e.FailureType})
	}
	return nil
}

func (t *translator) record(r *protocol.Record) error {
	b, ok := t.bindings[r.Stream]
	if !ok {
		return fmt.Errorf("the read emitted a record of stream %q, which no binding of this shard captures", r.Stream)
	}
	op, err := operation(b.stream, r.Data)
	if err != nil {
		return fmt.Errorf("stream %s: %w", r.Stream, err)
	}
	if err := t.out.captured(b.index, withMeta(r.Data, op)); err != nil {
		return err
	}
	t.docsSinceCheckpoint++
	t.docs++
	return nil
}

func (t *translator) state(s *protocol.State) error {
	if s.Type != protocol.StateTypeStream || s.Stream == nil {
		return fmt.Errorf("the read emitted a %s state; only STREAM states map to bindings", s.Type)
	}
	name := s.Stream.StreamDescriptor.Name
	b, ok := t.bindings[name]
	if !ok {
		return fmt.Errorf("the read emitted a state of stream %q, which no binding of this shard captures", name)
	}
	next, err := decodeJSON(s.Stream.StreamState)
	if err != nil {
		return fmt.Errorf("stream %s: its state is not JSON: %w", name, err)
	}
	patch := mergeDiff(b.state, next)
	updated, err := marshal(map[string]any{b.stateKey: patch})
	if err != nil {
		return err
	}
	if err := t.checkpoint(updated); err != nil {
		return err
	}
	b.state = next
	return nil
}

func (t *translator) checkpoint(updated json.RawMessage) error {
	if err := t.out.write(Response{Checkpoint: &Checkpoint{State: ConnectorState{Updated: updated, MergePatch: true}}}); err != nil {
		return err
	}
	t.docsSinceCheckpoint = 0
	t.checkpoints++
	return nil
}

// finish commits documents that no STATE followed (a read that failed),
// with an empty patch: their streams' states did not move, so a restart
// reads them again rather than losing them.
func (t *translator) finish() error {
	if t.docsSinceCheckpoint > 0 {
		if err := t.checkpoint(json.RawMessage(`{}`)); err != nil {
			return err
		}
	}
	return t.out.flush()
}

// Values of _meta.op.
const (
	opCreate = "c"
	opUpdate = "u"
	opDelete = "d"
)

// operation tells what a record reports, as Flow's _meta.op:
//
//   - "d": a deletion (is_deleted);
//   - "c": the object as created: its updated cursor (the time of the change
//     the record reflects) is not after its creation time. That is every
//     record of a backfill (updated is the creation time, or for a child the
//     parent's, which is older) and of a creation event; and every record of
//     the streams without an updated cursor, which only list new objects;
//   - "u": a change after the creation; also every record of the children
//     without a creation time (bank accounts, line items), which cannot
//     tell.
func operation(s streams.Stream, data []byte) (string, error) {
	var head struct {
		Created   json.RawMessage `json:"created"`
		Date      json.RawMessage `json:"date"`
		Updated   json.RawMessage `json:"updated"`
		IsDeleted json.RawMessage `json:"is_deleted"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return "", fmt.Errorf("a record is not a JSON object: %w", err)
	}
	createdField := head.Created
	if s.Cursor == "date" { // invoice items
		createdField = head.Date
	}
	switch {
	case string(head.IsDeleted) == "true":
		return opDelete, nil
	case !s.ChangeTracked() || len(head.Updated) == 0:
		return opCreate, nil
	}
	created, err1 := strconv.ParseInt(string(createdField), 10, 64)
	updated, err2 := strconv.ParseInt(string(head.Updated), 10, 64)
	if err1 == nil && err2 == nil && updated <= created {
		return opCreate, nil
	}
	return opUpdate, nil
}

// withMeta returns the JSON object data with "_meta":{"op":op} as its first
// member; the rest passes through byte for byte.
func withMeta(data []byte, op string) []byte {
	i := bytes.IndexByte(data, '{')
	if i < 0 {
		return data
	}
	rest := bytes.TrimLeft(data[i+1:], " \t\r\n")
	out := make([]byte, 0, len(data)+24)
	out = append(out, `{"_meta":{"op":`...)
	out = strconv.AppendQuote(out, op)
	out = append(out, '}')
	if len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

// responseWriter writes responses on stdout, one per line, buffered;
// checkpoints and the answers to requests are flushed at once.
type responseWriter struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func newResponseWriter(w io.Writer) *responseWriter {
	return &responseWriter{w: bufio.NewWriterSize(w, 256<<10)}
}

// write writes r and flushes.
func (o *responseWriter) write(r Response) error {
	line, err := marshal(r)
	if err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.put(line, '\n')
	if o.err == nil {
		o.err = o.w.Flush()
	}
	return o.wrap()
}

// captured writes a captured document; it stays buffered until the next
// checkpoint, which is what commits it anyway.
func (o *responseWriter) captured(binding int, doc []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	var head [48]byte
	line := append(head[:0], `{"captured":{`...)
	if binding != 0 { // zero values are left out, as protobuf's JSON does
		line = append(line, `"binding":`...)
		line = strconv.AppendInt(line, int64(binding), 10)
		line = append(line, ',')
	}
	line = append(line, `"doc":`...)
	o.put(line)
	o.put(doc, '}', '}', '\n')
	return o.wrap()
}

func (o *responseWriter) put(b []byte, tail ...byte) {
	if o.err == nil {
		_, o.err = o.w.Write(b)
	}
	if o.err == nil && len(tail) > 0 {
		_, o.err = o.w.Write(tail)
	}
}

func (o *responseWriter) flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = o.w.Flush()
	}
	return o.wrap()
}

func (o *responseWriter) wrap() error {
	if o.err != nil {
		return fmt.Errorf("%w: %v", errStdout, o.err)
	}
	return nil
}
