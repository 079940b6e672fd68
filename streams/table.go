package streams

import "strings"

// Table is the one place a stream is declared. Adding a stream is one entry
// here; what the OpenAPI description knows about its endpoint (the object it
// lists, the filters it accepts) comes from the generated Endpoints table, and
// its JSON schema from catalog/schemas, both produced by `go generate ./...`.
//
// Keep entries sorted by name: discover prints streams in this order.
var Table = []Stream{
	{Name: "balance_transactions", Path: "/v1/balance_transactions", Cursor: "created"},
	{Name: "bank_accounts", Path: "/v1/customers/{customer}/bank_accounts", Parent: "customers", ParentIDField: "customer",
		Events: []string{"customer.source.created", "customer.source.updated", "customer.source.deleted"}},
	{Name: "charges", Path: "/v1/charges", Cursor: "created",
		Events: []string{"charge.captured", "charge.expired", "charge.failed", "charge.pending", "charge.refunded", "charge.succeeded", "charge.updated"}},
	// A new checkout session has no event until it completes or expires:
	// new sessions are also listed by created on every run.
	{Name: "checkout_sessions", Path: "/v1/checkout/sessions", Cursor: "created", Events: checkoutSessionEvents, ListNew: true},
	{Name: "checkout_sessions_line_items", Path: "/v1/checkout/sessions/{session}/line_items", Parent: "checkout_sessions", ParentIDField: "checkout_session_id", AddParentID: true,
		Events: checkoutSessionEvents, ListNew: true},
	{Name: "coupons", Path: "/v1/coupons", Cursor: "created", Events: []string{"coupon.created", "coupon.updated", "coupon.deleted"}},
	// A balance transaction changes the customer's balance, which Stripe
	// reports as customer.updated.
	{Name: "customer_balance_transactions", Path: "/v1/customers/{customer}/balance_transactions", Parent: "customers", ParentIDField: "customer",
		Events: []string{"customer.created", "customer.updated"}},
	{Name: "customers", Path: "/v1/customers", Cursor: "created", Events: []string{"customer.created", "customer.updated", "customer.deleted"}},
	{Name: "disputes", Path: "/v1/disputes", Cursor: "created",
		Events: []string{"charge.dispute.closed", "charge.dispute.created", "charge.dispute.funds_reinstated", "charge.dispute.funds_withdrawn", "charge.dispute.updated"}},
	{Name: "events", Path: "/v1/events", Cursor: "created"},
	// Invoice items record their creation time as "date"; the list still
	// filters it with created[...]. Stripe has no invoiceitem.updated event
	// in this API version: edits of an invoice item are not seen.
	{Name: "invoice_items", Path: "/v1/invoiceitems", Cursor: "date", Events: []string{"invoiceitem.created", "invoiceitem.deleted"}},
	{Name: "invoice_line_items", Path: "/v1/invoices/{invoice}/lines", Parent: "invoices", ParentIDField: "invoice_id", AddParentID: true, EmbeddedList: "lines",
		Events: invoiceEvents},
	{Name: "invoices", Path: "/v1/invoices", Cursor: "created", Events: invoiceEvents},
	{Name: "payment_intents", Path: "/v1/payment_intents", Cursor: "created",
		Events: []string{"payment_intent.amount_capturable_updated", "payment_intent.canceled", "payment_intent.created", "payment_intent.partially_funded",
			"payment_intent.payment_failed", "payment_intent.processing", "payment_intent.requires_action", "payment_intent.succeeded"}},
	{Name: "payouts", Path: "/v1/payouts", Cursor: "created",
		Events: []string{"payout.canceled", "payout.created", "payout.failed", "payout.paid", "payout.reconciliation_completed", "payout.updated"}},
	{Name: "plans", Path: "/v1/plans", Cursor: "created", Events: []string{"plan.created", "plan.updated", "plan.deleted"}},
	{Name: "products", Path: "/v1/products", Cursor: "created", Events: []string{"product.created", "product.updated", "product.deleted"}, OwnUpdated: true},
	{Name: "promotion_codes", Path: "/v1/promotion_codes", Cursor: "created", Events: []string{"promotion_code.created", "promotion_code.updated"}},
	{Name: "refunds", Path: "/v1/refunds", Cursor: "created", Events: []string{"charge.refund.updated", "refund.created", "refund.updated"}},
	{Name: "subscription_items", Path: "/v1/subscription_items", Parent: "subscriptions", ParentIDParam: "subscription", ParentIDField: "subscription", EmbeddedList: "items",
		Events: subscriptionEvents},
	// Stripe hides canceled subscriptions from the list unless status=all.
	{Name: "subscriptions", Path: "/v1/subscriptions", Cursor: "created", Params: map[string]string{"status": "all"}, Events: subscriptionEvents},
	{Name: "transfers", Path: "/v1/transfers", Cursor: "created", Events: []string{"transfer.created", "transfer.reversed", "transfer.updated"}},
}

// Event types shared by a parent and its child stream.
var (
	checkoutSessionEvents = []string{"checkout.session.async_payment_failed", "checkout.session.async_payment_succeeded",
		"checkout.session.completed", "checkout.session.expired"}
	// invoice.upcoming is left out: it describes an invoice that does not
	// exist yet and has no id.
	invoiceEvents = []string{"invoice.created", "invoice.deleted", "invoice.finalization_failed", "invoice.finalized",
		"invoice.marked_uncollectible", "invoice.paid", "invoice.payment_action_required", "invoice.payment_failed",
		"invoice.payment_succeeded", "invoice.sent", "invoice.updated", "invoice.voided"}
	subscriptionEvents = []string{"customer.subscription.created", "customer.subscription.deleted", "customer.subscription.paused",
		"customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired", "customer.subscription.resumed",
		"customer.subscription.trial_will_end", "customer.subscription.updated"}
)

// Stream declares one Airbyte stream: which Stripe list it reads and how.
type Stream struct {
	// Name is the Airbyte stream name.
	Name string
	// Path is the Stripe list endpoint. A child stream's path holds its
	// parent's id as a {placeholder}, unless ParentIDParam names a query
	// parameter for it instead.
	Path string
	// Params are fixed query parameters every list request of the stream sends.
	Params map[string]string
	// Cursor is the record field that holds the object's creation time,
	// which the stream is incremental on and which the list filters with
	// created[gte|lt] ("created", or "date" for invoice items); empty for a
	// full-refresh stream.
	Cursor string

	// Parent names the stream whose objects own this stream's objects.
	Parent string
	// ParentIDParam is the query parameter that carries the parent's id, for
	// child lists that are not nested in the path (/v1/subscription_items).
	ParentIDParam string
	// ParentIDField is the record field that holds the parent's id.
	ParentIDField string
	// AddParentID says Stripe's object does not carry ParentIDField, so the
	// connector adds it to every record (a catalog test checks this against
	// the object's schema).
	AddParentID bool
	// EmbeddedList is the parent's field that embeds the first page of the
	// children as a list; the child endpoint is read only when its has_more
	// is true.
	EmbeddedList string

	// Events are the event types that report a change of the stream's
	// objects (for a child stream: of its parent, or of the child itself). A
	// stream with events is change-tracked: it backfills through its list
	// endpoint, then follows /v1/events and emits the current version of
	// every object that changed, with an "updated" cursor.
	Events []string
	// ListNew says Stripe sends no event when an object is created (for a
	// child stream: when its parent is), so the events phase also lists the
	// objects (parents) created since the created cursor.
	ListNew bool
	// OwnUpdated says Stripe's object has an updated field of its own
	// (products), which the connector keeps as the cursor instead of adding
	// one (a catalog test checks this against the object's schema).
	OwnUpdated bool
}

// ChangeTracked reports whether the stream follows Stripe's events.
func (s Stream) ChangeTracked() bool { return len(s.Events) > 0 }

// requestPerParent reports whether a child stream's children cost a request
// per parent: its parent does not embed them.
func (s Stream) requestPerParent() bool { return s.Parent != "" && s.EmbeddedList == "" }

// IsDeletion reports whether an event of type typ means its object is gone.
// customer.subscription.deleted is not one: the subscription is canceled,
// and still listed (with status=all) and retrievable.
func IsDeletion(typ string) bool {
	return strings.HasSuffix(typ, ".deleted") && typ != "customer.subscription.deleted"
}

// Incremental reports whether the stream supports incremental sync.
func (s Stream) Incremental() bool { return s.Cursor != "" || s.ChangeTracked() }

// CursorField is the record field an incremental sync of the stream is
// ordered by: "updated" for change-tracked streams (the time of the change
// the record reflects), else the creation time.
func (s Stream) CursorField() string {
	if s.ChangeTracked() {
		return UpdatedField
	}
	return s.Cursor
}

// Fields the connector adds to change-tracked records.
const (
	// UpdatedField holds the time (epoch seconds) of the change the record
	// reflects: the event's created, or the object's creation for records
	// from a backfill. A destination keeps the record with the highest one.
	UpdatedField = "updated"
	// DeletedField is true on the last known version of a deleted object.
	DeletedField = "is_deleted"
)

// Lookup returns the stream named name.
func Lookup(name string) (Stream, bool) {
	for _, s := range Table {
		if s.Name == name {
			return s, true
		}
	}
	return Stream{}, false
}
