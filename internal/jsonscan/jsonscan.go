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

// Element is one element of an array compacted by CompactElements: its
// bytes are dst[Start:End], and ID is the string value of its top-level
// "id" member when it is an object that has one (without escapes).
type Element struct {
	Start, End int
	ID         string
}

// CompactElements appends every element of the array at the start of arr
// to dst, each compacted onto one line, and returns where each one lies,
// with its id: splitting a list page, dropping its whitespace and finding
// each object's id in one pass over the bytes. It fails when arr does not
// start with a complete array.
func CompactElements(dst, arr []byte) ([]byte, []Element, error) {
	dst, elems, _, err := CompactElementsLen(dst, arr)
	return dst, elems, err
}

// CompactElementsLen is CompactElements that also returns how many bytes
// of arr the array took, for a caller scanning past it.
func CompactElementsLen(dst, arr []byte) ([]byte, []Element, int, error) {
	dst, elems, n, err := compactElements(dst, arr)
	return dst, elems, n, err
}

func compactElements(dst, arr []byte) ([]byte, []Element, int, error) {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return dst, nil, 0, errNotArray
	}
	i = SkipSpace(arr, i+1)
	var elems []Element
	if i < len(arr) && arr[i] == ']' {
		return dst, elems, i + 1, nil
	}
	for {
		e := Element{Start: len(dst)}
		depth := 0
		atKey := false   // the next string at depth 1 is a key
		idValue := false // the next value at depth 1 is the "id" member's
		idSeen := false  // the first "id" member counts, as for String
		for {
			if i >= len(arr) {
				return dst, nil, 0, errCutOff
			}
			switch c := arr[i]; c {
			case ' ', '\n', '\t', '\r':
				i++
				continue
			case '"':
				end := SkipString(arr, i)
				if end < 0 {
					return dst, nil, 0, errCutOff
				}
				if depth == 1 {
					switch {
					case atKey:
						idValue = !idSeen && end-i == 4 && arr[i+1] == 'i' && arr[i+2] == 'd'
						idSeen = idSeen || idValue
					case idValue:
						if s := arr[i+1 : end-1]; bytes.IndexByte(s, '\\') < 0 {
							e.ID = string(s)
						}
						idValue = false
					}
				}
				dst = append(dst, arr[i:end]...)
				i = end
			case '{', '[':
				depth++
				atKey = depth == 1 && c == '{'
				dst = append(dst, c)
				i++
			case '}', ']':
				depth--
				dst = append(dst, c)
				i++
			case ':':
				if depth == 1 {
					atKey = false
				}
				dst = append(dst, c)
				i++
			case ',':
				if depth == 0 {
					return dst, nil, 0, errCutOff // a comma where a value belongs
				}
				if depth == 1 {
					atKey, idValue = true, false
				}
				dst = append(dst, c)
				i++
			default:
				j := i + 1
				for j < len(arr) {
					if b := arr[j]; b == ',' || b == '}' || b == ']' || b == ':' || b == ' ' || b == '\n' || b == '\t' || b == '\r' || b == '"' {
						break
					}
					j++
				}
				if depth == 1 {
					idValue = false
				}
				dst = append(dst, arr[i:j]...)
				i = j
			}
			if depth < 0 {
				return dst, nil, 0, errCutOff
			}
			if depth == 0 {
				break
			}
		}
		e.End = len(dst)
		elems = append(elems, e)
		i = SkipSpace(arr, i)
		if i >= len(arr) {
			return dst, nil, 0, errCutOff
		}
		switch arr[i] {
		case ']':
			return dst, elems, i + 1, nil
		case ',':
			i = SkipSpace(arr, i+1)
		default:
			return dst, nil, 0, errCutOff
		}
	}
}
