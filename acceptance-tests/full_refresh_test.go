package acceptance

import (
	"bytes"
	"math"
	"testing"

	"source-stripe/internal/fakestripe"
)

func TestFullRefreshSequentialReads(t *testing.T) {
	t.Parallel()
	p, _ := fakePeer(t, fakestripe.DefaultDataset())
	cat := p.discover()
	catalog, streams := configuredCatalog(t, cat, fullRefreshMode)

	first := p.read(nil, catalog, nil)
	requireCompleteRead(t, first, streams)
	second := p.read(nil, catalog, nil)
	requireCompleteRead(t, second, streams)

	a, b := keys(t, first), keys(t, second)
	perStream := map[string]int{}
	for k := range a {
		perStream[k.stream]++
	}
	for _, s := range streams {
		if perStream[s] == 0 {
			t.Fatalf("stream %s: the first read returned no records; the comparison would prove nothing", s)
		}
	}

	var missing, extra, changed []string
	for k, r := range a {
		r2, ok := b[k]
		switch {
		case !ok:
			missing = append(missing, k.String())
		case !bytes.Equal(r.Data, r2.Data):
			changed = append(changed, k.String())
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			extra = append(extra, k.String())
		}
	}
	if len(missing)+len(extra)+len(changed) > 0 {
		t.Errorf("the two reads differ (the data did not change in between): %d records only in the first (%s), %d only in the second (%s), %d with other data (%s)",
			len(missing), firstLines(missing, 5), len(extra), firstLines(extra, 5), len(changed), firstLines(changed, 5))
	}

	lastFirst := int64(math.MinInt64)
	for _, r := range first.Records("") {
		lastFirst = max(lastFirst, r.EmittedAt)
	}
	var early []string
	for _, r := range second.Records("") {
		if r.EmittedAt <= lastFirst {
			early = append(early, keyOf(t, r).String())
		}
	}
	if len(early) > 0 {
		t.Errorf("%d records of the second read have emitted_at at or before the first read's latest (%d): %s", len(early), lastFirst, firstLines(early, 5))
	}
}
