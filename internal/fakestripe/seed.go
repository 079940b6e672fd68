package fakestripe

import (
	"fmt"
	"time"
)

// Dataset says what Seed stores.
type Dataset struct {
	// Start and End bound the objects' creation times: [Start, End).
	Start, End time.Time
	// Counts is the number of objects per top-level kind (KindCharge: 250...). Events listed here are
	// creation events of random seeded objects, created when their object was.
	Counts map[string]int

	// Children per parent.
	LinesPerInvoice                int
	ItemsPerSubscription           int
	BankAccountsPerCustomer        int
	BalanceTransactionsPerCustomer int
	LineItemsPerCheckoutSession    int

	// One parent of each kind gets this many children instead, so that a child list spans pages
	// (0 keeps the per-parent number): the first seeded invoice, subscription and customer.
	BigInvoiceLines                int
	BigSubscriptionItems           int
	BigCustomerBalanceTransactions int

	// CanceledSubscriptions of the subscriptions are canceled, hidden from /v1/subscriptions unless status=all.
	CanceledSubscriptions int

	// PerSecond is the average number of objects of a kind that share a creation second (default 3).
	PerSecond int
	// SameSecond objects of each kind (at most half of them) are created in one second in the middle
	// of the range, so that a page of 100 can end inside a second.
	SameSecond int

	// Seed makes ids and relations reproducible: the same dataset seeded into a new server gives the
	// same objects.
	Seed int64
}

// DefaultEnd ends DefaultDataset's range; fixed so that the default data is the same every run.
var DefaultEnd = time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)

// DefaultDataset is a few hundred objects created in the 30 days before DefaultEnd (set Start and
// End to move them), with children spanning several pages and 110 charges in one second.
func DefaultDataset() Dataset {
	end := DefaultEnd
	return Dataset{
		Start: end.Add(-30 * 24 * time.Hour),
		End:   end,
		Counts: map[string]int{
			KindBalanceTransaction: 40,
			KindCharge:             250,
			KindCheckoutSession:    15,
			KindCoupon:             12,
			KindCustomer:           60,
			KindDispute:            8,
			KindEvent:              80,
			KindInvoiceItem:        30,
			KindInvoice:            40,
			KindPaymentIntent:      30,
			KindPayout:             10,
			KindPlan:               8,
			KindProduct:            10,
			KindPromotionCode:      10,
			KindRefund:             20,
			KindSubscription:       30,
			KindTransfer:           10,
		},
		LinesPerInvoice:                2,
		ItemsPerSubscription:           1,
		BankAccountsPerCustomer:        1,
		BalanceTransactionsPerCustomer: 2,
		LineItemsPerCheckoutSession:    2,
		BigInvoiceLines:                250,
		BigSubscriptionItems:           15,
		BigCustomerBalanceTransactions: 150,
		CanceledSubscriptions:          6,
		PerSecond:                      3,
		SameSecond:                     110,
		Seed:                           1,
	}
}

// Scale multiplies every count of d by f (children per parent stay), keeping at least one object of
// each kind that had some.
func (d Dataset) Scale(f float64) Dataset {
	counts := make(map[string]int, len(d.Counts))
	for k, n := range d.Counts {
		if n > 0 {
			counts[k] = max(1, int(float64(n)*f))
		}
	}
	d.Counts = counts
	return d
}

// Seed adds d's objects to the store. It reseeds the id generator with d.Seed. Seeded objects record
// no events besides d.Counts[KindEvent].
func (s *Server) Seed(d Dataset) {
	if !d.End.After(d.Start) {
		panic(fmt.Sprintf("fakestripe: dataset range [%v, %v) is empty", d.Start, d.End))
	}
	for kind := range d.Counts {
		if mustKind(kind).isChild() {
			panic(fmt.Sprintf("fakestripe: %s is a child kind; set its number per parent", kind))
		}
	}
	if d.PerSecond <= 0 {
		d.PerSecond = 3
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rng = newRand(d.Seed)
	sd := &seeder{s: s, d: d, start: d.Start.Unix(), end: d.End.Unix()}
	seeded := map[string][]*object{}
	for _, k := range kindTable {
		if k.isChild() || k.name == KindEvent {
			continue
		}
		for _, created := range sd.times(d.Counts[k.name]) {
			o := s.newObject(k, created, "")
			s.appendUnsorted(o)
			seeded[k.name] = append(seeded[k.name], o)
		}
		// Later kinds pick relations among these.
		s.sortDirty()
		switch k.name {
		case KindCustomer:
			sd.children(seeded[k.name], KindBankAccount, d.BankAccountsPerCustomer, 0)
			sd.children(seeded[k.name], KindCustomerBalanceTransaction, d.BalanceTransactionsPerCustomer, d.BigCustomerBalanceTransactions)
		case KindSubscription:
			sd.cancel(seeded[k.name])
			sd.children(seeded[k.name], KindSubscriptionItem, d.ItemsPerSubscription, d.BigSubscriptionItems)
		case KindInvoice:
			sd.children(seeded[k.name], KindInvoiceLineItem, d.LinesPerInvoice, d.BigInvoiceLines)
		case KindCheckoutSession:
			sd.children(seeded[k.name], KindCheckoutSessionLineItem, d.LineItemsPerCheckoutSession, 0)
		}
		s.sortDirty()
	}
	sd.events(seeded, d.Counts[KindEvent])
	s.sortDirty()
}

type seeder struct {
	s          *Server
	d          Dataset
	start, end int64
}

// times returns n creation times in [start, end): clusters averaging PerSecond objects a second,
// plus one second holding SameSecond of them.
func (sd *seeder) times(n int) []int64 {
	if n == 0 {
		return nil
	}
	rng := sd.s.rng
	span := sd.end - sd.start
	burst := min(sd.d.SameSecond, n/2)
	out := make([]int64, 0, n)
	mid := sd.start + span/2
	for range burst {
		out = append(out, mid)
	}
	seconds := make([]int64, max(1, (n-burst)/sd.d.PerSecond))
	for i := range seconds {
		seconds[i] = sd.start + rng.Int64N(span)
	}
	for len(out) < n {
		out = append(out, seconds[rng.IntN(len(seconds))])
	}
	return out
}

// childTime is a child's creation time: its parent's second or one shortly after.
func (sd *seeder) childTime(parent *object) int64 {
	t := parent.created + sd.s.rng.Int64N(3)
	return min(t, sd.end-1)
}

func (sd *seeder) children(parents []*object, kind string, each, big int) {
	k := kindsByName[kind]
	for i, p := range parents {
		n := each
		if i == 0 && big > 0 {
			n = big
		}
		for range n {
			sd.s.appendUnsorted(sd.s.newObject(k, sd.childTime(p), p.id))
		}
	}
}

// cancel cancels the first CanceledSubscriptions subscriptions, at a time after their creation.
func (sd *seeder) cancel(subs []*object) {
	for _, o := range subs[:min(len(subs), sd.d.CanceledSubscriptions)] {
		at := o.created + sd.s.rng.Int64N(max(1, sd.end-o.created))
		o.set("status", jsonString("canceled"))
		o.set("canceled_at", jsonInt(at))
		o.set("ended_at", jsonInt(at))
	}
}

// events records n creation events of random seeded objects, at their objects' creation time; past
// one per object they are update events.
func (sd *seeder) events(seeded map[string][]*object, n int) {
	var candidates []*object
	for _, k := range kindTable {
		if k.events.created != "" && !k.isChild() {
			candidates = append(candidates, seeded[k.name]...)
		}
	}
	s := sd.s
	if len(candidates) == 0 {
		// Nothing to talk about: the fixture's own event.
		for _, created := range sd.times(n) {
			s.appendUnsorted(s.newObject(kindsByName[KindEvent], created, ""))
		}
		return
	}
	order := s.rng.Perm(len(candidates))
	for i := range n {
		o := candidates[order[i%len(candidates)]]
		typ, data := o.spec.events.created, []byte(nil)
		if i >= len(candidates) && o.spec.events.updated != "" {
			typ = o.spec.events.updated
			data = []byte(`{"object":` + string(s.renderBytes(o)) + `,"previous_attributes":{"metadata":{"seeded":"before"}}}`)
		} else {
			data = []byte(`{"object":` + string(s.renderBytes(o)) + `}`)
		}
		ev := s.newObject(kindsByName[KindEvent], o.created, "")
		ev.eventType = typ
		ev.set("type", jsonString(typ))
		ev.set("data", data)
		s.appendUnsorted(ev)
	}
}
