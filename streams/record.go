package streams

import (
	"strconv"

	"source-stripe/internal/jsonscan"
)

// field is a top-level field the connector adds to a record: a key and its
// value as raw JSON.
type field struct {
	key   string
	value []byte
}

func intField(key string, v int64) field { return field{key, strconv.AppendInt(nil, v, 10)} }

func stringField(key, v string) field {
	return field{key, strconv.AppendQuote(nil, v)} // ids are ASCII: Go and JSON quoting agree
}

var trueJSON = []byte("true")

// renderFields renders fields as JSON object members, "k":v,..., for the
// writer to add at the start of a record.
func renderFields(fields []field) []byte {
	if len(fields) == 0 {
		return nil
	}
	n := 0
	for _, f := range fields {
		n += len(f.key) + len(f.value) + 4
	}
	out := make([]byte, 0, n)
	for i, f := range fields {
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendQuote(out, f.key)
		out = append(out, ':')
		out = append(out, f.value...)
	}
	return out
}

// creationOf reads the object's creation time, the top-level member named
// cursor, scanning no further than it.
func creationOf(obj []byte, cursor string) int64 {
	var created int64
	jsonscan.Members(obj, func(key, value []byte) bool {
		if string(key) != cursor {
			return true
		}
		created, _ = strconv.ParseInt(string(value), 10, 64)
		return false
	})
	return created
}
