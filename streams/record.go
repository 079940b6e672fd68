package streams

import (
	"bytes"
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

// withFields returns the JSON object data with fields added first. The
// object itself is passed through byte for byte.
func withFields(data []byte, fields ...field) []byte {
	if len(fields) == 0 {
		return data
	}
	i := bytes.IndexByte(data, '{')
	if i < 0 {
		return data
	}
	n := len(data)
	for _, f := range fields {
		n += len(f.key) + len(f.value) + 4
	}
	out := make([]byte, 0, n)
	out = append(out, data[:i+1]...)
	for j, f := range fields {
		if j > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, f.key...)
		out = append(out, '"', ':')
		out = append(out, f.value...)
	}
	rest := data[i+1:]
	if k := jsonscan.SkipSpace(rest, 0); k < len(rest) && rest[k] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}
