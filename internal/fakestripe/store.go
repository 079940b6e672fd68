package fakestripe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"

	"github.com/stripe/stripe-mock/embedded"
)

// field is one top-level member of a JSON object, its value kept as compact JSON.
type field struct {
	key string
	raw []byte // nil removes the key from the rendered object
}

// object is one stored Stripe object: its template's fields with a few overridden.
// Only the overrides are stored, so that hundreds of thousands of objects stay small.
type object struct {
	spec    *kindSpec
	id      string
	created int64 // sort key; also the createdField's value when the kind has one
	parent  string
	fields  []field // overrides of the template, sorted by key
	deleted bool
	// eventType caches an event's type for the types filter.
	eventType string
}

// collection holds the objects of one kind, newest first (created desc, id desc).
type collection struct {
	spec     *kindSpec
	tmpl     []field
	sorted   []*object
	byParent map[string][]*object
	dirty    bool // sorted needs sorting (bulk seeding appends unsorted)
}

// newer reports whether a comes before b in Stripe's list order.
func newer(a, b *object) bool {
	if a.created != b.created {
		return a.created > b.created
	}
	return a.id > b.id
}

func compareObjects(a, b *object) int {
	switch {
	case newer(a, b):
		return -1
	case newer(b, a):
		return 1
	}
	return 0
}

// insertSorted puts o in its place in list, which is sorted newest first.
func insertSorted(list []*object, o *object) []*object {
	i := sort.Search(len(list), func(i int) bool { return !newer(list[i], o) })
	return slices.Insert(list, i, o)
}

// removeSorted takes o out of list.
func removeSorted(list []*object, o *object) []*object {
	i := sort.Search(len(list), func(i int) bool { return !newer(list[i], o) })
	if i < len(list) && list[i] == o {
		return slices.Delete(list, i, i+1)
	}
	return list
}

func (o *object) get(key string) ([]byte, bool) {
	for _, f := range o.fields {
		if f.key == key {
			return f.raw, true
		}
	}
	return nil, false
}

// set overrides one field; raw nil removes it from the rendered object.
func (o *object) set(key string, raw []byte) {
	o.fields = setField(o.fields, key, raw)
}

func setField(fields []field, key string, raw []byte) []field {
	i := sort.Search(len(fields), func(i int) bool { return fields[i].key >= key })
	if i < len(fields) && fields[i].key == key {
		fields[i].raw = raw
		return fields
	}
	return slices.Insert(fields, i, field{key, raw})
}

func lookup(fields []field, key string) ([]byte, bool) {
	i := sort.Search(len(fields), func(i int) bool { return fields[i].key >= key })
	if i < len(fields) && fields[i].key == key {
		return fields[i].raw, true
	}
	return nil, false
}

// templates are the example objects of Stripe's OpenAPI fixtures, split into sorted fields.
var templates = sync.OnceValue(func() map[string][]field {
	var doc struct {
		Resources map[string]map[string]json.RawMessage `json:"resources"`
	}
	if err := json.Unmarshal(embedded.OpenAPIFixtures, &doc); err != nil {
		panic(fmt.Sprintf("fakestripe: reading stripe-mock fixtures: %v", err))
	}
	out := make(map[string][]field)
	names := append(Kinds(), "account")
	for _, name := range names {
		res, ok := doc.Resources[name]
		if !ok {
			panic(fmt.Sprintf("fakestripe: stripe-mock fixtures have no %q", name))
		}
		fields := make([]field, 0, len(res))
		for k, v := range res {
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				panic(fmt.Sprintf("fakestripe: fixture %s.%s: %v", name, k, err))
			}
			fields = append(fields, field{k, buf.Bytes()})
		}
		slices.SortFunc(fields, func(a, b field) int { return compareStrings(a.key, b.key) })
		out[name] = fields
	}
	return out
})

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// writeFields writes the JSON object made of base with over laid on top; both are sorted by key.
func writeFields(buf *bytes.Buffer, base, over []field) {
	buf.WriteByte('{')
	first := true
	i, j := 0, 0
	for i < len(base) || j < len(over) {
		var f field
		switch {
		case j >= len(over) || (i < len(base) && base[i].key < over[j].key):
			f = base[i]
			i++
		case i >= len(base) || over[j].key < base[i].key:
			f = over[j]
			j++
		default:
			f = over[j]
			i++
			j++
		}
		if f.raw == nil {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		buf.Write(jsonString(f.key))
		buf.WriteByte(':')
		buf.Write(f.raw)
	}
	buf.WriteByte('}')
}

func jsonString(s string) []byte {
	safe := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			safe = false
			break
		}
	}
	if safe {
		b := make([]byte, 0, len(s)+2)
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	return mustJSON(s)
}

func jsonInt(n int64) []byte { return strconv.AppendInt(nil, n, 10) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakestripe: encoding %T: %v", v, err))
	}
	return b
}

var jsonNull = []byte("null")

// render writes o as Stripe serves it. The caller holds s.mu.
func (s *Server) render(buf *bytes.Buffer, o *object) {
	if o.deleted && o.spec.deletion == removedWithStub {
		buf.WriteString(`{"deleted":true,"id":`)
		buf.Write(jsonString(o.id))
		buf.WriteString(`,"object":`)
		buf.Write(jsonString(o.spec.name))
		buf.WriteByte('}')
		return
	}
	over := make([]field, 0, len(o.fields)+8)
	over = append(over, o.fields...)
	// Fields derived from the id, unless a test overrode them.
	for _, f := range derivedFields(o) {
		if _, ok := lookup(over, f.key); !ok {
			over = setField(over, f.key, f.raw)
		}
	}
	// Fields that must agree with the store whatever the overrides say.
	over = setField(over, "id", jsonString(o.id))
	if o.spec.createdField != "" {
		over = setField(over, o.spec.createdField, jsonInt(o.created))
	}
	if o.spec.parentField != "" && o.parent != "" {
		over = setField(over, o.spec.parentField, jsonString(o.parent))
	}
	for _, e := range o.spec.embeds {
		over = setField(over, e.field, s.embeddedList(o, e))
	}
	writeFields(buf, s.colls[o.spec.name].tmpl, over)
}

func (s *Server) renderBytes(o *object) []byte {
	var buf bytes.Buffer
	s.render(&buf, o)
	return buf.Bytes()
}

// embedPageSize is how many children Stripe embeds in a parent's list field.
const embedPageSize = 10

// embeddedList renders the first page of o's children as Stripe embeds it in the parent.
func (s *Server) embeddedList(o *object, e embed) []byte {
	children := s.colls[e.child].byParent[o.id]
	n := min(len(children), embedPageSize)
	var buf bytes.Buffer
	buf.WriteString(`{"data":[`)
	for i, c := range children[:n] {
		if i > 0 {
			buf.WriteByte(',')
		}
		s.render(&buf, c)
	}
	buf.WriteString(`],"has_more":`)
	buf.WriteString(strconv.FormatBool(len(children) > n))
	buf.WriteString(`,"object":"list","total_count":`)
	buf.WriteString(strconv.Itoa(len(children)))
	buf.WriteString(`,"url":`)
	buf.Write(jsonString(e.url(o.id)))
	buf.WriteByte('}')
	return buf.Bytes()
}

// derivedFields are template fields that embed the template's own id; they are rebuilt from the object's id.
func derivedFields(o *object) []field {
	emptyList := func(url string) []byte {
		return []byte(`{"data":[],"has_more":false,"object":"list","url":` + string(jsonString(url)) + `}`)
	}
	switch o.spec.name {
	case KindCharge:
		return []field{{"refunds", emptyList("/v1/charges/" + o.id + "/refunds")}}
	case KindTransfer:
		return []field{{"reversals", emptyList("/v1/transfers/" + o.id + "/reversals")}}
	case KindCheckoutSession:
		return []field{{"url", jsonString("https://checkout.stripe.com/c/pay/" + o.id)}}
	case KindPaymentIntent:
		return []field{{"client_secret", jsonString(o.id + "_secret_fake")}}
	case KindProduct:
		return []field{{"updated", jsonInt(o.created)}}
	}
	return nil
}

// stringField returns a string field of o, from its overrides or its template.
func (s *Server) stringField(o *object, key string) string {
	raw, ok := o.get(key)
	if !ok {
		raw, _ = lookup(s.colls[o.spec.name].tmpl, key)
	}
	var v string
	_ = json.Unmarshal(raw, &v)
	return v
}
