package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"source-stripe/internal/jsonscan"
)

// Writer is the one writer of Airbyte messages on stdout. It is safe for
// concurrent use: every message is written whole, as one line, under a lock,
// so concurrent streams never interleave inside a line. Output is buffered and
// flushed at every message that is not a RECORD, so a STATE never waits in
// the buffer behind the records it covers.
type Writer struct {
	mu      sync.Mutex
	out     *bufio.Writer
	err     error
	secrets []secret
	now     func() time.Time
	records int64
	// since counts each stream's records written since its last STATE,
	// in the order they are written, so a STATE's count is exactly the
	// records between it and the stream's previous STATE.
	since map[string]int64
}

// bufferSize: large enough that records go out in big writes.
const bufferSize = 256 << 10

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{out: bufio.NewWriterSize(w, bufferSize), now: time.Now}
}

// Redact registers secrets that must never appear in a LOG, TRACE or
// CONNECTION_STATUS message, nor in Mask's output; they are replaced by a
// masked form. Secrets shorter than 4 bytes are ignored: masking them would
// mangle ordinary words.
func (w *Writer) Redact(secrets ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		quoted := strconv.Quote(s)
		sec := secret{masked: MaskSecret(s),
			// Plain text may quote the secret as Go does (%q).
			plain: []string{s, quoted[1 : len(quoted)-1]}}
		// Messages are masked once encoded, where a secret holding quotes,
		// backslashes, <, > or & appears escaped, its raw form nowhere.
		for _, form := range sec.plain {
			enc, _ := json.Marshal(form)
			sec.encoded = append(sec.encoded, string(enc[1:len(enc)-1]))
		}
		w.secrets = append(w.secrets, sec)
	}
}

// secret is a registered secret in the forms it can take in output.
type secret struct {
	plain   []string // as text
	encoded []string // inside a JSON string
	masked  string
}

// keyShape is anything shaped like a Stripe secret or restricted key,
// registered or not: a key pasted into the wrong field, another account's,
// or the first bytes of one, quoted from a body, are secrets too.
var keyShape = regexp.MustCompile(`([sr]k_(?:live|test)_)[0-9A-Za-z]{8,}`)

// MaskKeys masks everything in s shaped like a Stripe secret or restricted
// key: "sk_live_****".
func MaskKeys(s string) string { return keyShape.ReplaceAllString(s, "${1}****") }

// Mask replaces every registered secret, and anything shaped like a Stripe
// secret key, in s.
func (w *Writer) Mask(s string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mask(s, false)
}

// mask masks s, which is JSON when encoded is true.
func (w *Writer) mask(s string, encoded bool) string {
	for _, sec := range w.secrets {
		forms := sec.plain
		if encoded {
			forms = sec.encoded
		}
		for _, form := range forms {
			s = strings.ReplaceAll(s, form, sec.masked)
		}
	}
	return MaskKeys(s)
}

// MaskSecret shows what kind of key a secret is without revealing it:
// "sk_test_****".
func MaskSecret(secret string) string {
	prefix := ""
	for _, p := range []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_"} {
		if strings.HasPrefix(secret, p) {
			prefix = p
		}
	}
	return prefix + "****"
}

// Now returns the time in epoch milliseconds, as emitted_at wants it.
func (w *Writer) Now() int64 { return w.now().UnixMilli() }

// Record writes a RECORD. data must be one JSON object; it is compacted to
// a single line but otherwise passed through untouched.
func (w *Writer) Record(stream string, data []byte, fields []byte, emittedAt int64) error {
	// The line is built outside the lock, so that streams compact their
	// records in parallel; only the write is serialized.
	buf := linePool.Get().(*[]byte)
	line := appendRecord((*buf)[:0], stream, data, fields, emittedAt)
	w.mu.Lock()
	if w.err == nil {
		_, w.err = w.out.Write(line)
		w.records++
		if w.since == nil {
			w.since = map[string]int64{}
		}
		w.since[stream]++
	}
	err := w.err
	w.mu.Unlock()
	*buf = line
	linePool.Put(buf)
	return err
}

var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// appendRecord appends a RECORD line. data is a JSON object, passed through
// as it is when it is on one line (stripeapi compacts what Stripe sends),
// compacted otherwise; fields, when set, are members ("k":v,...) added at
// its start.
func appendRecord(line []byte, stream string, data, fields []byte, emittedAt int64) []byte {
	line = append(line, `{"type":"RECORD","record":{"stream":`...)
	line = strconv.AppendQuote(line, stream) // stream names are ASCII identifiers
	line = append(line, `,"data":`...)
	put := func(line, b []byte) []byte {
		if bytes.IndexByte(b, '\n') < 0 {
			return append(line, b...)
		}
		return jsonscan.AppendCompact(line, b)
	}
	open := bytes.IndexByte(data, '{')
	if len(fields) == 0 || open < 0 {
		line = put(line, data)
	} else {
		line = append(line, '{')
		line = append(line, fields...)
		rest := data[open+1:]
		if i := jsonscan.SkipSpace(rest, 0); i < len(rest) && rest[i] != '}' {
			line = append(line, ',')
		}
		line = put(line, rest)
	}
	line = append(line, `,"emitted_at":`...)
	line = strconv.AppendInt(line, emittedAt, 10)
	return append(line, "}}\n"...)
}

// Records returns how many RECORD messages were written.
func (w *Writer) Records() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.records
}

// Write writes any message and flushes, so that everything before it is
// visible downstream.
func (w *Writer) Write(m Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(m)
}

func (w *Writer) writeLocked(m Message) error {
	line, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	if m.Type == TypeLog || m.Type == TypeTrace || m.Type == TypeConnectionStatus {
		line = []byte(w.mask(string(line), true))
	}
	line = append(line, '\n')
	if _, w.err = w.out.Write(line); w.err != nil {
		return w.err
	}
	w.err = w.out.Flush()
	return w.err
}

// Flush writes out buffered records.
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.err = w.out.Flush()
	return w.err
}

// Log writes a LOG message.
func (w *Writer) Log(level, message string) error {
	return w.Write(Message{Type: TypeLog, Log: &Log{Level: level, Message: message}})
}

// StreamStatus writes a TRACE STREAM_STATUS for stream.
func (w *Writer) StreamStatus(stream, status string, reasons ...StatusReason) error {
	return w.Write(Message{Type: TypeTrace, Trace: &Trace{
		Type:      TraceStreamStatus,
		EmittedAt: float64(w.Now()),
		StreamStatus: &StreamStatus{
			StreamDescriptor: StreamDescriptor{Name: stream},
			Status:           status,
			Reasons:          reasons,
		},
	}})
}

// Unstated returns how many records of stream were written since its last
// STATE.
func (w *Writer) Unstated(stream string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.since[stream]
}

// StreamState writes a STREAM STATE for stream. Its sourceStats count the
// stream's records written since its previous STATE: the writer counts them
// as it writes them, so the count is exact whichever goroutines wrote them.
func (w *Writer) StreamState(stream string, state json.RawMessage) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	count := w.since[stream]
	delete(w.since, stream)
	return w.writeLocked(Message{Type: TypeState, State: &State{
		Type:        StateTypeStream,
		Stream:      &StreamState{StreamDescriptor: StreamDescriptor{Name: stream}, StreamState: state},
		SourceStats: &StateStats{RecordCount: float64(count)},
	}})
}

// TraceError writes err as a TRACE ERROR.
func (w *Writer) TraceError(err error) error {
	e := AsError(err)
	t := &TraceErr{Message: e.Message, FailureType: e.FailureType}
	if e.Err != nil {
		t.InternalMessage = e.Err.Error()
	}
	if e.Stream != "" {
		t.StreamDescriptor = &StreamDescriptor{Name: e.Stream}
	}
	return w.Write(Message{Type: TypeTrace, Trace: &Trace{Type: TraceError, EmittedAt: float64(w.Now()), Error: t}})
}
