package fakestripe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// couponAlphabet is what Stripe's generated coupon ids are made of.
const couponAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"

// newID returns an id for kind that no stored object has. The caller holds s.mu for writing.
func (s *Server) newID(k *kindSpec) string {
	alphabet := idAlphabet
	if k.name == KindCoupon {
		alphabet = couponAlphabet
	}
	b := make([]byte, len(k.prefix)+k.idLen)
	copy(b, k.prefix)
	for {
		for i := len(k.prefix); i < len(b); i++ {
			b[i] = alphabet[s.rng.IntN(len(alphabet))]
		}
		if _, taken := s.byID[string(b)]; !taken {
			return string(b)
		}
	}
}

// newObject makes an object of kind with its relations filled in but does not store it.
func (s *Server) newObject(k *kindSpec, created int64, parent string) *object {
	o := &object{spec: k, id: s.newID(k), created: created, parent: parent}
	s.byID[o.id] = o
	s.relate(o)
	return o
}

// pick returns a random stored object of kind, or nil.
func (s *Server) pick(kind string) *object {
	list := s.colls[kind].sorted
	if len(list) == 0 {
		return nil
	}
	return list[s.rng.IntN(len(list))]
}

func (s *Server) pickID(kind string, nullPercent int) []byte {
	if nullPercent > 0 && s.rng.IntN(100) < nullPercent {
		return jsonNull
	}
	if o := s.pick(kind); o != nil {
		return jsonString(o.id)
	}
	return jsonNull
}

// relate points o's relational fields at stored objects, in place of the template's ids that exist
// nowhere. The caller holds s.mu for writing.
func (s *Server) relate(o *object) {
	switch o.spec.name {
	case KindCharge:
		o.set("customer", s.pickID(KindCustomer, 20))
		if bt := s.pick(KindBalanceTransaction); bt != nil {
			o.set("balance_transaction", jsonString(bt.id))
		}
	case KindBalanceTransaction:
		if ch := s.pick(KindCharge); ch != nil {
			o.set("source", jsonString(ch.id))
		}
	case KindCheckoutSession:
		o.set("customer", s.pickID(KindCustomer, 50))
		o.set("expires_at", jsonInt(o.created+24*60*60))
	case KindDispute, KindRefund:
		if ch := s.pick(KindCharge); ch != nil {
			o.set("charge", jsonString(ch.id))
		}
	case KindInvoiceItem:
		o.set("customer", s.pickID(KindCustomer, 0))
	case KindInvoice:
		if sub := s.pick(KindSubscription); sub != nil && s.rng.IntN(2) == 0 {
			o.set("subscription", jsonString(sub.id))
			cus, _ := sub.get("customer")
			o.set("customer", cus)
		} else {
			o.set("customer", s.pickID(KindCustomer, 0))
		}
	case KindPaymentIntent:
		o.set("customer", s.pickID(KindCustomer, 30))
	case KindPlan:
		if p := s.pick(KindProduct); p != nil {
			o.set("product", jsonString(p.id))
		}
	case KindPromotionCode:
		if c := s.pick(KindCoupon); c != nil {
			o.set("coupon", s.renderBytes(c))
		}
		o.set("code", jsonString(strings.ToUpper(o.id[len(o.spec.prefix):len(o.spec.prefix)+8])))
	case KindSubscription:
		o.set("customer", s.pickID(KindCustomer, 0))
		o.set("status", jsonString("active"))
		o.set("start_date", jsonInt(o.created))
		o.set("billing_cycle_anchor", jsonInt(o.created))
		// The fixture is "active" yet canceled and ended; an active subscription is neither.
		o.set("cancel_at", jsonNull)
		o.set("canceled_at", jsonNull)
		o.set("ended_at", jsonNull)
	case KindEvent:
		version := APIVersion
		if s.eventAPIVersion != "" {
			version = s.eventAPIVersion
		}
		o.set("api_version", jsonString(version))
	}
}

// insert stores o in its collection. The caller holds s.mu for writing.
func (s *Server) insert(o *object) {
	c := s.colls[o.spec.name]
	s.byID[o.id] = o
	c.sorted = insertSorted(c.sorted, o)
	if o.parent != "" {
		c.byParent[o.parent] = insertSorted(c.byParent[o.parent], o)
	}
}

// appendUnsorted stores o for a bulk load; sortDirty must run before the store is read again.
func (s *Server) appendUnsorted(o *object) {
	c := s.colls[o.spec.name]
	s.byID[o.id] = o
	c.sorted = append(c.sorted, o)
	if o.parent != "" {
		c.byParent[o.parent] = append(c.byParent[o.parent], o)
	}
	c.dirty = true
}

func (s *Server) sortDirty() {
	for _, c := range s.colls {
		if !c.dirty {
			continue
		}
		slices.SortFunc(c.sorted, compareObjects)
		for _, list := range c.byParent {
			slices.SortFunc(list, compareObjects)
		}
		c.dirty = false
	}
}

// emit records an event about o, Stripe style. The caller holds s.mu for writing.
func (s *Server) emit(typ string, at int64, o *object, previous []field) string {
	if typ == "" {
		return ""
	}
	var data bytes.Buffer
	data.WriteString(`{"object":`)
	s.render(&data, o)
	if previous != nil {
		data.WriteString(`,"previous_attributes":`)
		writeFields(&data, nil, previous)
	}
	data.WriteByte('}')
	return s.emitRaw(typ, at, data.Bytes())
}

func (s *Server) emitRaw(typ string, at int64, data []byte) string {
	ev := s.newObject(kindsByName[KindEvent], at, "")
	ev.eventType = typ
	ev.set("type", jsonString(typ))
	ev.set("data", data)
	s.insert(ev)
	return ev.id
}

func (s *Server) unixOrNow(t time.Time) int64 {
	if t.IsZero() {
		t = s.Now()
	}
	return t.Unix()
}

// immutable fields cannot be set by Create or Update: the store owns them.
func checkFields(k *kindSpec, fields map[string]any) {
	for key := range fields {
		if key == "id" || key == "object" || (key == k.createdField && key != "") || (key == k.parentField && key != "") {
			panic(fmt.Sprintf("fakestripe: %s.%s is set by the fake, not by tests", k.name, key))
		}
		for _, e := range k.embeds {
			if key == e.field {
				panic(fmt.Sprintf("fakestripe: %s.%s follows the stored children; use AddChild", k.name, key))
			}
		}
	}
}

func sortedFieldKeys(fields map[string]any) []string {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Create stores a new top-level object of kind created at created (Now when zero), its relations
// pointing at random stored objects and fields overriding any top-level field, and records the
// creation event Stripe records for the kind, if any. It returns the new id.
func (s *Server) Create(kind string, created time.Time, fields map[string]any) string {
	k := mustKind(kind)
	if k.isChild() {
		panic(fmt.Sprintf("fakestripe: %s is a child kind; use AddChild", kind))
	}
	checkFields(k, fields)
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.unixOrNow(created)
	o := s.newObject(k, at, "")
	for _, key := range sortedFieldKeys(fields) {
		o.set(key, mustJSON(fields[key]))
	}
	if k.name == KindEvent {
		if raw, ok := o.get("type"); ok {
			_ = json.Unmarshal(raw, &o.eventType)
		}
	}
	s.insert(o)
	s.emit(k.events.created, at, o, nil)
	return o.id
}

// Update sets top-level fields of a stored object at time at (Now when zero) and records the update
// event Stripe records for the kind, if any, with the old values as previous_attributes.
func (s *Server) Update(kind, id string, at time.Time, fields map[string]any) {
	k := mustKind(kind)
	checkFields(k, fields)
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.mustGet(k, id)
	when := s.unixOrNow(at)
	previous := s.apply(o, fields)
	if k.name == KindProduct {
		o.set("updated", jsonInt(when))
	}
	s.emit(k.events.updated, when, o, previous)
}

// apply sets fields on o and returns their previous values.
func (s *Server) apply(o *object, fields map[string]any) []field {
	previous := make([]field, 0, len(fields))
	tmpl := s.colls[o.spec.name].tmpl
	for _, key := range sortedFieldKeys(fields) {
		old, ok := o.get(key)
		if !ok {
			old, _ = lookup(tmpl, key)
		}
		if old == nil {
			old = jsonNull
		}
		previous = append(previous, field{key, old})
		o.set(key, mustJSON(fields[key]))
	}
	return previous
}

func (s *Server) mustGet(k *kindSpec, id string) *object {
	o, ok := s.byID[id]
	if !ok || o.spec != k || o.deleted {
		panic(fmt.Sprintf("fakestripe: no %s %q", k.name, id))
	}
	return o
}

// Delete deletes a stored object at time at (Now when zero) the way Stripe does for its kind:
// customers disappear from lists and retrieve as {"deleted":true}, their subscriptions canceled; coupons, plans, products,
// invoices, invoice items and bank accounts disappear; subscriptions are canceled and stay listed
// with status=all. It records the matching event. Kinds Stripe cannot delete panic.
func (s *Server) Delete(kind, id string, at time.Time) {
	k := mustKind(kind)
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.mustGet(k, id)
	when := s.unixOrNow(at)
	switch k.deletion {
	case notDeletable:
		panic(fmt.Sprintf("fakestripe: Stripe cannot delete a %s", kind))
	case canceled:
		s.cancel(o, when)
		return
	}
	if k.name == KindCustomer {
		// Deleting a customer cancels its subscriptions first.
		for _, sub := range s.colls[KindSubscription].sorted {
			if s.stringField(sub, "customer") == id && s.stringField(sub, "status") != "canceled" {
				s.cancel(sub, when)
			}
		}
	}
	s.emit(k.events.deleted, when, o, nil)
	o.deleted = true
	c := s.colls[k.name]
	c.sorted = removeSorted(c.sorted, o)
	if o.parent != "" {
		c.byParent[o.parent] = removeSorted(c.byParent[o.parent], o)
	}
}

func (s *Server) cancel(sub *object, when int64) {
	s.apply(sub, map[string]any{"status": "canceled", "canceled_at": when, "ended_at": when})
	s.emit(sub.spec.events.deleted, when, sub, nil)
}

// AddChild stores a new child of kind childKind under parentID, created at created (Now when zero),
// and returns its id. It records the child's creation event, or else the parent's update event when
// the parent embeds its children (a new invoice line changes invoice.lines).
func (s *Server) AddChild(childKind, parentID string, created time.Time) string {
	k := mustKind(childKind)
	if !k.isChild() {
		panic(fmt.Sprintf("fakestripe: %s is not a child kind; use Create", childKind))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustGet(kindsByName[k.parent], parentID)
	at := s.unixOrNow(created)
	var previous []field
	var embedField string
	for _, e := range p.spec.embeds {
		if e.child == k.name {
			embedField = e.field
			previous = []field{{e.field, s.embeddedList(p, e)}}
		}
	}
	o := s.newObject(k, at, parentID)
	s.insert(o)
	switch {
	case k.events.created != "":
		s.emit(k.events.created, at, o, nil)
	case embedField != "":
		s.emit(p.spec.events.updated, at, p, previous)
	case k.name == KindCustomerBalanceTransaction:
		// A balance transaction changes the customer's balance; Stripe
		// reports that as customer.updated.
		s.emit(p.spec.events.updated, at, p, s.addToBalance(p, o))
	}
	return o.id
}

// RecordEvent records an event of type typ about a stored object, for changes Create, Update and
// Delete do not model (charge.refunded, invoice.paid...). previous, when not nil, becomes
// data.previous_attributes. It returns the event's id.
func (s *Server) RecordEvent(typ, kind, id string, at time.Time, previous map[string]any) string {
	k := mustKind(kind)
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.byID[id]
	if !ok || o.spec != k {
		panic(fmt.Sprintf("fakestripe: no %s %q", kind, id))
	}
	var prev []field
	if previous != nil {
		prev = []field{}
		for _, key := range sortedFieldKeys(previous) {
			prev = append(prev, field{key, mustJSON(previous[key])})
		}
	}
	return s.emit(typ, s.unixOrNow(at), o, prev)
}

// Objects returns the stored objects of kind as the API serves them, newest first: the objects a
// list would return without filters, except that canceled subscriptions are included.
func (s *Server) Objects(kind string) []json.RawMessage {
	k := mustKind(kind)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []json.RawMessage
	for _, o := range s.colls[k.name].sorted {
		if k.isChild() && s.byID[o.parent].deleted {
			continue
		}
		out = append(out, s.renderBytes(o))
	}
	return out
}

// IDs returns the ids of Objects(kind), newest first.
func (s *Server) IDs(kind string) []string {
	k := mustKind(kind)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for _, o := range s.colls[k.name].sorted {
		if k.isChild() && s.byID[o.parent].deleted {
			continue
		}
		out = append(out, o.id)
	}
	return out
}

// Children returns the children of kind childKind under parentID, newest first, as their list
// endpoint serves them; nil when the parent is unknown or deleted.
func (s *Server) Children(childKind, parentID string) []json.RawMessage {
	k := mustKind(childKind)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.byID[parentID]; !ok || p.deleted {
		return nil
	}
	var out []json.RawMessage
	for _, o := range s.colls[k.name].byParent[parentID] {
		out = append(out, s.renderBytes(o))
	}
	return out
}

// ChildIDs returns the ids of Children(childKind, parentID).
func (s *Server) ChildIDs(childKind, parentID string) []string {
	k := mustKind(childKind)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.byID[parentID]; !ok || p.deleted {
		return nil
	}
	var out []string
	for _, o := range s.colls[k.name].byParent[parentID] {
		out = append(out, o.id)
	}
	return out
}

// Object returns one stored object as GET /v1/<kind>/{id} serves it (the stub of a deleted
// customer); false when there is none.
func (s *Server) Object(kind, id string) (json.RawMessage, bool) {
	k := mustKind(kind)
	s.mu.RLock()
	defer s.mu.RUnlock()
	o, ok := s.byID[id]
	if !ok || o.spec != k || (o.deleted && k.deletion != removedWithStub) {
		return nil, false
	}
	return s.renderBytes(o), true
}

// Count returns how many objects of kind Objects would return.
func (s *Server) Count(kind string) int {
	return len(s.IDs(kind))
}

// addToBalance adds a customer balance transaction's amount to its
// customer's balance and returns the previous balance.
func (s *Server) addToBalance(customer, txn *object) []field {
	var balance, amount int64
	if raw, ok := customer.get("balance"); ok {
		_ = json.Unmarshal(raw, &balance)
	}
	if raw, ok := txn.get("amount"); ok {
		_ = json.Unmarshal(raw, &amount)
	}
	return s.apply(customer, map[string]any{"balance": balance + amount})
}

// SetEventAPIVersion makes events recorded from now on carry api_version v,
// as when the account's default API version differs from the one a client
// pins: their data.object is then rendered at v.
func (s *Server) SetEventAPIVersion(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eventAPIVersion = v
}
