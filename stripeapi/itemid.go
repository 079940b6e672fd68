package stripeapi

import (
	"bytes"
	"encoding/json"
)

// itemID returns the id of a list item, which must be a JSON object whose
// "id" is a non-empty string. raw comes out of a decoded document, so it is
// valid JSON; itemID reads it only up to the "id" key (Stripe writes it
// first), because decoding every object of every page a second time would
// cost a large share of a read's CPU. It never panics, whatever raw holds.
func itemID(raw []byte) (string, bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return "", false // the end of the object, or not JSON
		}
		keyEnd := skipString(raw, i)
		key := raw[i:keyEnd]
		i = skipSpace(raw, keyEnd)
		if i >= len(raw) || raw[i] != ':' {
			return "", false
		}
		i = skipSpace(raw, i+1)
		if isIDKey(key) {
			if i >= len(raw) || raw[i] != '"' {
				return "", false
			}
			var id string
			if json.Unmarshal(raw[i:skipString(raw, i)], &id) != nil || id == "" {
				return "", false
			}
			return id, true
		}
		i = skipSpace(raw, skipValue(raw, i))
		if i >= len(raw) || raw[i] != ',' {
			return "", false
		}
		i++
	}
}

func isIDKey(key []byte) bool {
	if string(key) == `"id"` {
		return true
	}
	if bytes.IndexByte(key, '\\') < 0 {
		return false
	}
	var k string // an escaped spelling, like "\u0069d"
	return json.Unmarshal(key, &k) == nil && k == "id"
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at raw[i] ('"').
func skipString(raw []byte, i int) int {
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(raw)
}

// skipValue returns the index after the value that starts at raw[i].
func skipValue(raw []byte, i int) int {
	if i >= len(raw) {
		return i
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				i = skipString(raw, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(raw) && raw[i] != ',' && raw[i] != '}' && raw[i] != ']' && raw[i] != ' ' && raw[i] != '\t' && raw[i] != '\n' && raw[i] != '\r' {
		i++
	}
	return i
}
