package streams

import (
	"bytes"
	"strconv"
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
	if k := skipSpace(rest, 0); k < len(rest) && rest[k] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

// topLevel returns the raw JSON value of the object's top-level member key,
// or nil. It scans without decoding, so that reading one field of a large
// record costs little.
func topLevel(obj []byte, key string) []byte {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return nil
		}
		if obj[i] == ',' {
			i++
			continue
		}
		end := skipString(obj, i)
		if end < 0 {
			return nil
		}
		k := obj[i+1 : end-1]
		i = skipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return nil
		}
		i = skipSpace(obj, i+1)
		vend := skipValue(obj, i)
		if vend < 0 {
			return nil
		}
		if string(k) == key {
			return obj[i:vend]
		}
		i = vend
	}
}

// topLevelInt reads an integer member, e.g. "created".
func topLevelInt(obj []byte, key string) (int64, bool) {
	v, err := strconv.ParseInt(string(topLevel(obj, key)), 10, 64)
	return v, err == nil
}

// topLevelString reads a string member without escapes, e.g. "id".
func topLevelString(obj []byte, key string) string {
	v := topLevel(obj, key)
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return ""
	}
	return string(v[1 : len(v)-1])
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i], or -1.
func skipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the JSON value starting at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\n', '\t', '\r':
			return i
		}
	}
	return i
}
