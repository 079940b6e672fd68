// Package jsontree reads values decoded by encoding/json into any, for
// tests that look at what a platform decoding the connector's output sees.
package jsontree

// Strings appends every string in v, object keys too, to dst.
func Strings(dst []string, v any) []string {
	switch v := v.(type) {
	case string:
		dst = append(dst, v)
	case map[string]any:
		for k, x := range v {
			dst = Strings(append(dst, k), x)
		}
	case []any:
		for _, x := range v {
			dst = Strings(dst, x)
		}
	}
	return dst
}
