package streams

// Table is the one place a stream is declared. Adding a stream is one entry
// here; what the OpenAPI description knows about its endpoint (the object it
// lists, the filters it accepts) comes from the generated Endpoints table, and
// its JSON schema from catalog/schemas, both produced by `go generate ./...`.
//
// Keep entries sorted by name: discover prints streams in this order.
var Table = []Stream{
	{Name: "balance_transactions", Path: "/v1/balance_transactions", Cursor: "created"},
	{Name: "bank_accounts", Path: "/v1/customers/{customer}/bank_accounts", Parent: "customers", ParentIDField: "customer"},
	{Name: "charges", Path: "/v1/charges", Cursor: "created"},
	{Name: "checkout_sessions", Path: "/v1/checkout/sessions", Cursor: "created"},
	{Name: "checkout_sessions_line_items", Path: "/v1/checkout/sessions/{session}/line_items", Parent: "checkout_sessions", ParentIDField: "checkout_session_id", AddParentID: true},
	{Name: "coupons", Path: "/v1/coupons", Cursor: "created"},
	{Name: "customer_balance_transactions", Path: "/v1/customers/{customer}/balance_transactions", Parent: "customers", ParentIDField: "customer"},
	{Name: "customers", Path: "/v1/customers", Cursor: "created"},
	{Name: "disputes", Path: "/v1/disputes", Cursor: "created"},
	{Name: "events", Path: "/v1/events", Cursor: "created"},
	// Invoice items record their creation time as "date"; the list still
	// filters it with created[...].
	{Name: "invoice_items", Path: "/v1/invoiceitems", Cursor: "date"},
	{Name: "invoice_line_items", Path: "/v1/invoices/{invoice}/lines", Parent: "invoices", ParentIDField: "invoice_id", AddParentID: true, EmbeddedList: "lines"},
	{Name: "invoices", Path: "/v1/invoices", Cursor: "created"},
	{Name: "payment_intents", Path: "/v1/payment_intents", Cursor: "created"},
	{Name: "payouts", Path: "/v1/payouts", Cursor: "created"},
	{Name: "plans", Path: "/v1/plans", Cursor: "created"},
	{Name: "products", Path: "/v1/products", Cursor: "created"},
	{Name: "promotion_codes", Path: "/v1/promotion_codes", Cursor: "created"},
	{Name: "refunds", Path: "/v1/refunds", Cursor: "created"},
	// Stripe hides canceled subscriptions from the list unless status=all.
	{Name: "subscription_items", Path: "/v1/subscription_items", Parent: "subscriptions", ParentIDParam: "subscription", ParentIDField: "subscription", EmbeddedList: "items"},
	{Name: "subscriptions", Path: "/v1/subscriptions", Cursor: "created", Params: map[string]string{"status": "all"}},
	{Name: "transfers", Path: "/v1/transfers", Cursor: "created"},
}

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
}

// Incremental reports whether the stream supports incremental sync.
func (s Stream) Incremental() bool { return s.Cursor != "" }

// Lookup returns the stream named name.
func Lookup(name string) (Stream, bool) {
	for _, s := range Table {
		if s.Name == name {
			return s, true
		}
	}
	return Stream{}, false
}
