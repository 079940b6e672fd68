package testbin

import "source-stripe/internal/fakestripe"

// Kind says which of the fake's objects a stream reads: the kind, and for
// a child stream the kind of its parents.
type Kind struct{ Kind, Parent string }

// StreamKinds maps each stream of the connector to the fake's kinds, for
// tests that compare what a read emitted with what the fake holds.
var StreamKinds = map[string]Kind{
	"balance_transactions":          {Kind: fakestripe.KindBalanceTransaction},
	"charges":                       {Kind: fakestripe.KindCharge},
	"checkout_sessions":             {Kind: fakestripe.KindCheckoutSession},
	"coupons":                       {Kind: fakestripe.KindCoupon},
	"customers":                     {Kind: fakestripe.KindCustomer},
	"disputes":                      {Kind: fakestripe.KindDispute},
	"events":                        {Kind: fakestripe.KindEvent},
	"invoice_items":                 {Kind: fakestripe.KindInvoiceItem},
	"invoices":                      {Kind: fakestripe.KindInvoice},
	"payment_intents":               {Kind: fakestripe.KindPaymentIntent},
	"payouts":                       {Kind: fakestripe.KindPayout},
	"plans":                         {Kind: fakestripe.KindPlan},
	"products":                      {Kind: fakestripe.KindProduct},
	"promotion_codes":               {Kind: fakestripe.KindPromotionCode},
	"refunds":                       {Kind: fakestripe.KindRefund},
	"subscriptions":                 {Kind: fakestripe.KindSubscription},
	"transfers":                     {Kind: fakestripe.KindTransfer},
	"bank_accounts":                 {Kind: fakestripe.KindBankAccount, Parent: fakestripe.KindCustomer},
	"checkout_sessions_line_items":  {Kind: fakestripe.KindCheckoutSessionLineItem, Parent: fakestripe.KindCheckoutSession},
	"customer_balance_transactions": {Kind: fakestripe.KindCustomerBalanceTransaction, Parent: fakestripe.KindCustomer},
	"invoice_line_items":            {Kind: fakestripe.KindInvoiceLineItem, Parent: fakestripe.KindInvoice},
	"subscription_items":            {Kind: fakestripe.KindSubscriptionItem, Parent: fakestripe.KindSubscription},
}
