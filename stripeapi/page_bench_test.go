package stripeapi

import (
	"io"
	"net/http"
	"testing"

	"source-stripe/internal/fakestripe"
)

// BenchmarkCheckPage splits a page of 100 charges as the fake serves them
// into compacted records: the per-record parsing cost of a read. (The fake
// answers compact JSON; Stripe indents its answers, which costs a little
// more to compact.)
func BenchmarkCheckPage(b *testing.B) {
	fake := fakestripe.New()
	defer fake.Close()
	d := fakestripe.DefaultDataset()
	d.Counts = map[string]int{fakestripe.KindCharge: 100}
	fake.Seed(d)
	req, _ := http.NewRequest(http.MethodGet, fake.URL()+"/v1/charges?limit=100", nil)
	req.SetBasicAuth(fakestripe.DefaultKey, "")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if page, problem := checkPage(body, ""); problem != "" || len(page.Data) != 100 {
		b.Fatalf("%d objects, %s", len(page.Data), problem)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		checkPage(body, "")
	}
}
