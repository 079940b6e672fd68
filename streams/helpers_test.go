package streams

import (
	"testing"

	"source-stripe/internal/fakestripe"
	"source-stripe/stripeapi"
)

// seeded starts a fake Stripe holding d, stopped when the test ends, and a
// client of it.
func seeded(t *testing.T, d fakestripe.Dataset) (*fakestripe.Server, Lister) {
	fake := fakestripe.New()
	t.Cleanup(fake.Close)
	fake.Seed(d)
	return fake, stripeapi.New(stripeapi.Options{APIKey: fakestripe.DefaultKey, BaseURL: fake.URL()})
}
