package commands

import (
	"context"
	"net/url"
	"sync/atomic"

	"source-stripe/streams"
	"source-stripe/stripeapi"
)

// countingLister counts the list requests of a read for its summary line.
type countingLister struct {
	streams.Lister
	requests atomic.Int64
}

func (c *countingLister) ListPage(ctx context.Context, path string, query url.Values) (stripeapi.Page, error) {
	c.requests.Add(1)
	return c.Lister.ListPage(ctx, path, query)
}
