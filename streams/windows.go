package streams

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"strconv"

	"source-stripe/stripeapi"
)

// Paging and window sizes.
const (
	// pageLimit: Stripe's maximum page size.
	pageLimit = 100
	// defaultWindowRecords: a window of about 20 pages is checkpointed as
	// a whole; smaller windows checkpoint more often but cost one more
	// partly-filled page each.
	defaultWindowRecords = 20 * pageLimit
	// growEmpty: an empty window grows this much, so that a start_date
	// years before the account's first object costs a few requests.
	growEmpty = 8
)

// pager reads Stripe lists: whole lists page by page, and created ranges
// window by window.
type pager struct {
	client        Lister
	windowRecords int64
	// onPage runs after every page that arrives.
	onPage func() error
}

// readWindows reads every object of the list at path with lo <= created < hi
// and passes it to emit, oldest window first. done(whi) runs after every
// object of the window [wlo, whi) has been emitted: the only point at which a
// checkpoint may move to whi, because Stripe pages a window newest first.
//
// Windows adapt to the data: the first request asks for the whole range; a
// range too dense to read as one window is split by the density its first
// page shows (that page is dropped and read again inside the smaller
// window), and every window sizes the next one.
func (p *pager) readWindows(ctx context.Context, path string, base url.Values, lo, hi int64, emit func([]byte) error, done func(int64) error) error {
	size := hi - lo
	for lo < hi {
		whi := hi
		if size < hi-lo {
			whi = lo + size
		}
		query := listQuery(base)
		query.Set("created[gte]", strconv.FormatInt(lo, 10))
		query.Set("created[lt]", strconv.FormatInt(whi, 10))
		page, err := p.page(ctx, path, query)
		if err != nil {
			return fmt.Errorf("reading %s created in [%d, %d): %w", path, lo, whi, err)
		}
		if page.HasMore && whi-lo > 1 {
			if want := denseWindow(page, lo, whi, p.windowRecords); want < whi-lo {
				size = want
				continue
			}
		}
		count, err := p.drain(ctx, path, query, page, emit)
		if err != nil {
			return fmt.Errorf("reading %s created in [%d, %d): %w", path, lo, whi, err)
		}
		if err := done(whi); err != nil {
			return err
		}
		size = nextWindow(whi-lo, count, p.windowRecords)
		lo = whi
	}
	return nil
}

// denseWindow returns the window size that should hold about target
// objects, judging by the first page of [lo, hi): its objects span the
// seconds from the oldest to the newest one on the page. (Measuring up to hi
// instead would count the quiet time since the account's last object and
// leave a dormant account's backfill in one window.)
func denseWindow(page stripeapi.Page, lo, hi, target int64) int64 {
	newest, err1 := objectRef(page.Data[0])
	oldest, err2 := objectRef(page.Data[len(page.Data)-1])
	if err1 != nil || err2 != nil || oldest.Created < lo || newest.Created >= hi || oldest.Created > newest.Created {
		return hi - lo
	}
	span := newest.Created - oldest.Created + 1 // seconds holding len(page.Data) objects
	estimate := int64(len(page.Data)) * (newest.Created + 1 - lo) / span
	if estimate <= target*3/2 {
		return hi - lo
	}
	return max(1, target*span/int64(len(page.Data)))
}

// nextWindow sizes the next window from how many objects the last one held.
func nextWindow(size int64, count int, target int64) int64 {
	if count == 0 {
		return size * growEmpty
	}
	return max(1, size*target/int64(count))
}

// paginate reads every page of a list.
func (p *pager) paginate(ctx context.Context, path string, query url.Values, emit func([]byte) error) error {
	page, err := p.page(ctx, path, query)
	if err != nil {
		return err
	}
	_, err = p.drain(ctx, path, query, page, emit)
	return err
}

// drain emits first and every following page of the list, and returns how
// many objects it emitted.
func (p *pager) drain(ctx context.Context, path string, query url.Values, page stripeapi.Page, emit func([]byte) error) (int, error) {
	count := 0
	lastID := ""
	for {
		for _, obj := range page.Data {
			if err := emit(obj); err != nil {
				return count, err
			}
		}
		count += len(page.Data)
		if !page.HasMore {
			return count, nil
		}
		if len(page.Data) == 0 {
			return count, fmt.Errorf("Stripe answered has_more with an empty page after %q: the list cannot progress", lastID)
		}
		last, err := objectRef(page.Data[len(page.Data)-1])
		if err != nil {
			return count, err
		}
		if last.ID == lastID {
			return count, fmt.Errorf("Stripe answered the same page twice (last object %q): the list cannot progress", last.ID)
		}
		lastID = last.ID
		query.Set("starting_after", lastID)
		if page, err = p.page(ctx, path, query); err != nil {
			return count, fmt.Errorf("reading the page after %s: %w", lastID, err)
		}
	}
}

func (p *pager) page(ctx context.Context, path string, query url.Values) (stripeapi.Page, error) {
	page, err := p.client.ListPage(ctx, path, query)
	if err != nil || p.onPage == nil {
		return page, err
	}
	return page, p.onPage()
}

// listQuery returns the query of a list request: full pages plus base.
func listQuery(base url.Values) url.Values {
	q := url.Values{"limit": {strconv.Itoa(pageLimit)}}
	maps.Copy(q, base)
	return q
}

// params turns a stream's fixed parameters into a query.
func params(m map[string]string) url.Values {
	q := url.Values{}
	for k, v := range m {
		q.Set(k, v)
	}
	return q
}

// ref is what pagination needs of an object: its id and creation time.
type ref struct {
	ID      string `json:"id"`
	Created int64  `json:"created"`
	Date    int64  `json:"date"` // invoice items' creation time
}

func objectRef(raw json.RawMessage) (ref, error) {
	var r ref
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("a list item is not a JSON object: %w", err)
	}
	if r.ID == "" {
		return r, fmt.Errorf("a list item has no id")
	}
	if r.Created == 0 {
		r.Created = r.Date
	}
	return r, nil
}
