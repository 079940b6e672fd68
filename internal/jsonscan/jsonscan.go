// Package jsonscan reads just enough of JSON documents to pass Stripe's
// objects through without decoding them: the members of an object, the
// elements of an array, compaction onto one line. Each function makes one
// pass over the bytes and allocates nothing, which keeps the per-record cost
// of a read far below encoding/json's decode and re-encode.
//
// The scanners check structure (balanced brackets, terminated strings), not
// every detail of the grammar: their input is an API's output, and a
// truncated or non-JSON body still fails to scan.
package jsonscan

import (
	"bytes"
	"strconv"
)

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipString returns the index after the string starting at b[i], or -1.
// It jumps from quote to quote (bytes.IndexByte is vectorized) and counts
// the backslashes before each: an odd number escapes it.
func SkipString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		n := 0
		for q-1-n > i && b[q-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// SkipValue returns the index after the JSON value starting at b[i], or -1
// when there is none or it is cut off.
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := SkipString(b, i)
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
	case ',', '}', ']', ':':
		return -1
	}
	start := i
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\n', '\t', '\r':
			return i
		}
	}
	if i == start {
		return -1
	}
	return i
}

// Members calls fn with each top-level member of the object obj: its key
// (the raw bytes between the quotes) and its raw value. fn returns false to
// stop. Members reports whether obj is a complete object.
func Members(obj []byte, fn func(key, value []byte) bool) bool {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for {
		end := SkipString(obj, i)
		if end < 0 {
			return false
		}
		key := obj[i+1 : end-1]
		i = SkipSpace(obj, end)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		i = SkipSpace(obj, i+1)
		vend := SkipValue(obj, i)
		if vend < 0 {
			return false
		}
		if !fn(key, obj[i:vend]) {
			return true
		}
		i = SkipSpace(obj, vend)
		if i >= len(obj) {
			return false
		}
		switch obj[i] {
		case '}':
			return true
		case ',':
			i = SkipSpace(obj, i+1)
		default:
			return false
		}
	}
}

// Member returns the raw value of the object's top-level member key, or nil.
func Member(obj []byte, key string) []byte {
	var found []byte
	Members(obj, func(k, v []byte) bool {
		if string(k) == key {
			found = v
			return false
		}
		return true
	})
	return found
}

// Int reads an integer member, e.g. "created".
func Int(obj []byte, key string) (int64, bool) {
	v, err := strconv.ParseInt(string(Member(obj, key)), 10, 64)
	return v, err == nil
}

// String reads a string member without escapes, e.g. "id"; "" otherwise.
func String(obj []byte, key string) string {
	v := Member(obj, key)
	if len(v) < 2 || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
		return ""
	}
	return string(v[1 : len(v)-1])
}

// Elements calls fn with each element of the array arr, in order, and
// stops at fn's first error. It fails when arr is not a complete array.
func Elements(arr []byte, fn func(elem []byte) error) error {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return errNotArray
	}
	i = SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return nil
	}
	for {
		end := SkipValue(arr, i)
		if end < 0 {
			return errCutOff
		}
		if err := fn(arr[i:end]); err != nil {
			return err
		}
		i = SkipSpace(arr, end)
		if i >= len(arr) {
			return errCutOff
		}
		switch arr[i] {
		case ']':
			return nil
		case ',':
			i = SkipSpace(arr, i+1)
		default:
			return errCutOff
		}
	}
}

// AppendCompact appends src without the whitespace between tokens: the one
// line a JSON message needs. Strings are copied byte for byte.
func AppendCompact(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		switch c := src[i]; c {
		case ' ', '\n', '\t', '\r':
			i++
		case '"':
			end := SkipString(src, i)
			if end < 0 {
				return append(dst, src[i:]...)
			}
			dst = append(dst, src[i:end]...)
			i = end
		default:
			// Copy a run of bytes up to the next space or string.
			j := i + 1
			for j < len(src) && src[j] != '"' && src[j] != ' ' && src[j] != '\n' && src[j] != '\t' && src[j] != '\r' {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
		}
	}
	return dst
}

type scanError string

func (e scanError) Error() string { return string(e) }

const (
	errNotArray scanError = "not a JSON array"
	errCutOff   scanError = "the JSON is cut off or malformed"
)
