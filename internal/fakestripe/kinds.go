package fakestripe

import (
	"fmt"
	"strings"
)

// Kinds of objects the fake serves. A kind is the object's `object` value in Stripe's API.
const (
	KindBalanceTransaction         = "balance_transaction"
	KindBankAccount                = "bank_account"
	KindCharge                     = "charge"
	KindCheckoutSession            = "checkout.session"
	KindCheckoutSessionLineItem    = "item"
	KindCoupon                     = "coupon"
	KindCustomer                   = "customer"
	KindCustomerBalanceTransaction = "customer_balance_transaction"
	KindDispute                    = "dispute"
	KindEvent                      = "event"
	KindInvoice                    = "invoice"
	KindInvoiceItem                = "invoiceitem"
	KindInvoiceLineItem            = "line_item"
	KindPaymentIntent              = "payment_intent"
	KindPayout                     = "payout"
	KindPlan                       = "plan"
	KindProduct                    = "product"
	KindPromotionCode              = "promotion_code"
	KindRefund                     = "refund"
	KindSubscription               = "subscription"
	KindSubscriptionItem           = "subscription_item"
	KindTransfer                   = "transfer"
)

// deletion says what Delete does to an object of a kind, following what Stripe does.
type deletion int

const (
	notDeletable deletion = iota
	// removed objects disappear from lists and retrieve as 404.
	removed
	// removedWithStub objects disappear from lists and retrieve as {"id","object","deleted":true}.
	removedWithStub
	// canceled objects stay listed with status "canceled" (subscriptions).
	canceled
)

// eventTypes are the event types Stripe records when an object of a kind is created, updated or deleted;
// empty when Stripe records none (see the enabled_events enum in Stripe's OpenAPI description).
type eventTypes struct{ created, updated, deleted string }

// embed is a parent's field that holds the first page of its children, like invoice.lines.
type embed struct {
	field string
	child string
	url   func(parentID string) string
}

// kindSpec declares one kind: where it is listed and how its objects relate to others.
type kindSpec struct {
	name   string
	path   string // list path; a child's path holds its parent's id as {placeholder}
	prefix string // id prefix
	idLen  int    // random characters after the prefix

	parent          string // parent kind, for children
	parentField     string // child field holding the parent's id, when the object has one
	parentPathParam string // placeholder of the parent's id in path
	parentParam     string // query parameter holding the parent's id (subscription_items)

	createdField  string // field holding the creation time: "created", "date", or "" when absent
	createdFilter bool   // the list accepts created[...]
	listParams    []string
	// stripeParams are list parameters Stripe accepts that the fake does not implement; they are
	// rejected with a message that says so instead of being silently ignored.
	stripeParams []string

	permission  string // restricted key permission, rak_<permission>_read
	events      eventTypes
	deletion    deletion
	embeds      []embed
	retrievable bool
}

// kindTable is the one place a kind is declared. Keep it in seeding order: a kind's relations point
// to kinds above it.
var kindTable = []*kindSpec{
	{name: KindCustomer, path: "/v1/customers", prefix: "cus_", idLen: 14, createdField: "created", createdFilter: true,
		stripeParams: []string{"email", "test_clock"}, permission: "customer",
		events:   eventTypes{"customer.created", "customer.updated", "customer.deleted"},
		deletion: removedWithStub, retrievable: true},
	{name: KindProduct, path: "/v1/products", prefix: "prod_", idLen: 14, createdField: "created", createdFilter: true,
		stripeParams: []string{"active", "ids", "shippable", "url"}, permission: "product",
		events:   eventTypes{"product.created", "product.updated", "product.deleted"},
		deletion: removed, retrievable: true},
	{name: KindPlan, path: "/v1/plans", prefix: "price_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"active", "product"}, permission: "plan",
		events:   eventTypes{"plan.created", "plan.updated", "plan.deleted"},
		deletion: removed, retrievable: true},
	{name: KindCoupon, path: "/v1/coupons", prefix: "", idLen: 8, createdField: "created", createdFilter: true,
		permission: "coupon",
		events:     eventTypes{"coupon.created", "coupon.updated", "coupon.deleted"},
		deletion:   removed, retrievable: true},
	{name: KindPromotionCode, path: "/v1/promotion_codes", prefix: "promo_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"active", "code", "coupon", "customer"}, permission: "promotion_code",
		events:      eventTypes{"promotion_code.created", "promotion_code.updated", ""},
		retrievable: true},
	{name: KindSubscription, path: "/v1/subscriptions", prefix: "sub_", idLen: 24, createdField: "created", createdFilter: true,
		listParams: []string{"status"},
		stripeParams: []string{"automatic_tax", "collection_method", "current_period_end", "current_period_start",
			"customer", "price", "test_clock"},
		permission: "subscription",
		events:     eventTypes{"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted"},
		deletion:   canceled, retrievable: true,
		embeds: []embed{{field: "items", child: KindSubscriptionItem,
			url: func(id string) string { return "/v1/subscription_items?subscription=" + id }}}},
	{name: KindSubscriptionItem, path: "/v1/subscription_items", prefix: "si_", idLen: 14,
		parent: KindSubscription, parentField: "subscription", parentParam: "subscription",
		createdField: "created", permission: "subscription", retrievable: true},
	{name: KindInvoice, path: "/v1/invoices", prefix: "in_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"collection_method", "customer", "due_date", "status", "subscription"},
		permission:   "invoice",
		events:       eventTypes{"invoice.created", "invoice.updated", "invoice.deleted"},
		deletion:     removed, retrievable: true,
		embeds: []embed{{field: "lines", child: KindInvoiceLineItem,
			url: func(id string) string { return "/v1/invoices/" + id + "/lines" }}}},
	{name: KindInvoiceLineItem, path: "/v1/invoices/{invoice}/lines", prefix: "il_", idLen: 24,
		parent: KindInvoice, parentPathParam: "invoice", permission: "invoice"},
	{name: KindInvoiceItem, path: "/v1/invoiceitems", prefix: "ii_", idLen: 24, createdField: "date", createdFilter: true,
		stripeParams: []string{"customer", "invoice", "pending"}, permission: "invoiceitem",
		events:   eventTypes{"invoiceitem.created", "", "invoiceitem.deleted"},
		deletion: removed, retrievable: true},
	{name: KindPaymentIntent, path: "/v1/payment_intents", prefix: "pi_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"customer"}, permission: "payment_intent",
		events:      eventTypes{"payment_intent.created", "", ""},
		retrievable: true},
	{name: KindCharge, path: "/v1/charges", prefix: "ch_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"customer", "payment_intent", "transfer_group"}, permission: "charge",
		events:      eventTypes{"charge.succeeded", "charge.updated", ""},
		retrievable: true},
	{name: KindBalanceTransaction, path: "/v1/balance_transactions", prefix: "txn_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"currency", "payout", "source", "type"}, permission: "balance_transaction",
		retrievable: true},
	{name: KindRefund, path: "/v1/refunds", prefix: "re_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"charge", "payment_intent"}, permission: "refund",
		events:      eventTypes{"refund.created", "refund.updated", ""},
		retrievable: true},
	{name: KindDispute, path: "/v1/disputes", prefix: "dp_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"charge", "payment_intent"}, permission: "dispute",
		events:      eventTypes{"charge.dispute.created", "charge.dispute.updated", ""},
		retrievable: true},
	{name: KindPayout, path: "/v1/payouts", prefix: "po_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"arrival_date", "destination", "status"}, permission: "payout",
		events:      eventTypes{"payout.created", "payout.updated", ""},
		retrievable: true},
	{name: KindTransfer, path: "/v1/transfers", prefix: "tr_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"destination", "transfer_group"}, permission: "transfer",
		events:      eventTypes{"transfer.created", "transfer.updated", ""},
		retrievable: true},
	{name: KindCheckoutSession, path: "/v1/checkout/sessions", prefix: "cs_test_", idLen: 24, createdField: "created", createdFilter: true,
		stripeParams: []string{"customer", "customer_details", "payment_intent", "payment_link", "status", "subscription"},
		permission:   "checkout_session", retrievable: true},
	{name: KindCheckoutSessionLineItem, path: "/v1/checkout/sessions/{session}/line_items", prefix: "li_", idLen: 24,
		parent: KindCheckoutSession, parentPathParam: "session", permission: "checkout_session"},
	{name: KindBankAccount, path: "/v1/customers/{customer}/bank_accounts", prefix: "ba_", idLen: 24,
		parent: KindCustomer, parentField: "customer", parentPathParam: "customer", permission: "customer",
		events:   eventTypes{"customer.source.created", "customer.source.updated", "customer.source.deleted"},
		deletion: removed},
	{name: KindCustomerBalanceTransaction, path: "/v1/customers/{customer}/balance_transactions", prefix: "cbtxn_", idLen: 24,
		parent: KindCustomer, parentField: "customer", parentPathParam: "customer", createdField: "created",
		permission: "customer"},
	{name: KindEvent, path: "/v1/events", prefix: "evt_", idLen: 24, createdField: "created", createdFilter: true,
		listParams: []string{"type", "types"}, stripeParams: []string{"delivery_success"}, permission: "event",
		retrievable: true},
}

var kindsByName = func() map[string]*kindSpec {
	m := make(map[string]*kindSpec, len(kindTable))
	for _, k := range kindTable {
		m[k.name] = k
	}
	return m
}()

// Kinds returns every kind the fake serves, parents before their children.
func Kinds() []string {
	out := make([]string, len(kindTable))
	for i, k := range kindTable {
		out[i] = k.name
	}
	return out
}

// ListPath returns the list endpoint of kind, with a child's parent placeholder left in place.
func ListPath(kind string) string { return mustKind(kind).path }

func mustKind(kind string) *kindSpec {
	k, ok := kindsByName[kind]
	if !ok {
		panic(fmt.Sprintf("fakestripe: unknown kind %q (known: %s)", kind, strings.Join(Kinds(), ", ")))
	}
	return k
}

// label names the kind in Stripe's "No such ..." messages.
func (k *kindSpec) label() string {
	switch k.name {
	case KindCheckoutSession:
		return "checkout session"
	case KindInvoiceItem:
		return "invoiceitem"
	case KindPlan:
		return "plan"
	}
	return strings.ReplaceAll(k.name, "_", " ")
}

func (k *kindSpec) isChild() bool { return k.parent != "" }

func (k *kindSpec) hasParam(name string) bool {
	for _, p := range k.listParams {
		if p == name {
			return true
		}
	}
	return false
}

func (k *kindSpec) stripeKnows(name string) bool {
	for _, p := range k.stripeParams {
		if p == name {
			return true
		}
	}
	return false
}
