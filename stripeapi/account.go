package stripeapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"source-stripe/protocol"
)

// Account is the outcome of checking a key against the configured account.
type Account struct {
	// Client reads the configured account: it sends Stripe-Account when
	// the account is a connected account of the key's platform.
	Client *Client
	// ID is the account read; empty if the key may not read /v1/account.
	ID string
	// Warning is set when the account could not be verified.
	Warning string
}

// ResolveAccount makes the one cheap authenticated call (GET /v1/account)
// that tells whether the key works and whether it reads accountID: either
// its own account, or a connected account of its platform. accountID may be
// empty (a key from the environment): then it reads the key's own account.
func (c *Client) ResolveAccount(ctx context.Context, accountID string) (Account, error) {
	own, err := c.accountID(ctx)
	switch {
	case StatusOf(err) == http.StatusForbidden:
		// A restricted key without the account permission: the key works,
		// only the account cannot be checked.
		return Account{Client: c, Warning: "the key may not read /v1/account, so 'account_id' was not verified"}, nil
	case err != nil:
		return Account{}, describeCheckFailure(err)
	case accountID == "" || own == accountID:
		return Account{Client: c, ID: own}, nil
	}
	connected := c.WithAccount(accountID)
	if _, err := connected.accountID(ctx); err != nil {
		return Account{}, &protocol.Error{FailureType: protocol.FailureConfig, Err: err,
			Message: fmt.Sprintf("the key belongs to account %s and cannot read account %s named in 'account_id': set 'account_id' to %s, or use a key of %s or of its platform", own, accountID, own, accountID)}
	}
	return Account{Client: connected, ID: accountID}, nil
}

func (c *Client) accountID(ctx context.Context) (string, error) {
	raw, err := c.Get(ctx, "/v1/account")
	if err != nil {
		return "", err
	}
	var acct struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(raw, &acct); err != nil || acct.ID == "" {
		return "", &ResponseError{Path: "/v1/account", Problem: "the answer has no account id"}
	}
	return acct.ID, nil
}

func describeCheckFailure(err error) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == 0 {
		return &protocol.Error{FailureType: protocol.FailureTransient, Err: err,
			Message: "could not reach Stripe: check the network (and STRIPE_API_BASE, if set)"}
	}
	return Classify(err, "")
}
