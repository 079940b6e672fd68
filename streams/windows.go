package streams

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"sync"

	"source-stripe/stripeapi"
)

// Paging and window sizes.
const (
	// pageLimit: Stripe's maximum page size.
	pageLimit = 100
	// defaultWindowRecords: a window is split when its first page shows it
	// holds more than about 20 pages. Smaller windows checkpoint more often
	// and spread over more workers, but each ends in a partly-filled page.
	defaultWindowRecords = 20 * pageLimit
	// maxSplit bounds how many windows one window is split into at once;
	// a window still too dense splits again when its own first page comes.
	maxSplit = 16
)

// pager reads Stripe lists: whole lists page by page, and created ranges
// window by window.
type pager struct {
	client        Lister
	windowRecords int64
	// workers is how many windows of one range are read at once.
	workers int
	// onPage runs after every page that arrives.
	onPage func() error
}

// window is a part of a created range still to read: lo <= created < hi,
// after the object after (when a page of it was read already).
type window struct {
	lo, hi int64
	after  string
}

// readWindows reads every object of the list at path with lo <= created < hi
// and passes it to emit, from up to p.workers goroutines at once (emit must
// be safe for that). done(c) runs each time the lowest created not yet fully
// read rises to c: every object created in [lo, c) has been emitted, which is
// the only promise a checkpoint may make, because Stripe pages a window
// newest first and windows finish out of order. done is never called
// concurrently.
//
// Windows adapt to the data: the first request asks for the whole range.
// When a window's first page says it has more, the page's span of seconds
// estimates how many objects the rest holds; a rest of more than
// windowRecords objects is split into windows read in parallel, a smaller
// one is paged through with starting_after.
func (p *pager) readWindows(ctx context.Context, path string, base url.Values, lo, hi int64, emit func([]byte) error, done func(int64) error) error {
	if lo >= hi {
		return nil
	}
	var (
		mu      sync.Mutex
		wake    = sync.NewCond(&mu)
		queue   = []window{{lo: lo, hi: hi}} // sorted by lo: the oldest first
		reading = map[*window]bool{}
		cursor  = lo
		failed  error
	)
	// lowest is the cursor: the lo of the oldest window not fully read.
	lowest := func() int64 {
		c := hi
		if len(queue) > 0 {
			c = queue[0].lo
		}
		for w := range reading {
			c = min(c, w.lo)
		}
		return c
	}
	work := func() {
		for {
			mu.Lock()
			for len(queue) == 0 && len(reading) > 0 && failed == nil {
				wake.Wait()
			}
			if failed != nil || len(queue) == 0 {
				mu.Unlock()
				return
			}
			w := queue[0]
			queue = queue[1:]
			reading[&w] = true
			mu.Unlock()

			rest, err := p.readWindow(ctx, path, base, w, emit)

			mu.Lock()
			delete(reading, &w)
			if err != nil && failed == nil {
				failed = fmt.Errorf("reading %s created in [%d, %d): %w", path, w.lo, w.hi, err)
			}
			for _, r := range rest {
				i, _ := slices.BinarySearchFunc(queue, r.lo, func(q window, lo int64) int { return cmp.Compare(q.lo, lo) })
				queue = slices.Insert(queue, i, r)
			}
			if c := lowest(); failed == nil && c > cursor {
				cursor = c
				if err := done(c); err != nil {
					failed = err
				}
			}
			wake.Broadcast()
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for range max(1, p.workers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	wg.Wait()
	return failed
}

// readWindow reads one page of w, emits it, and returns what of w is left
// to read: nothing, w itself after the page's last object, or w split.
func (p *pager) readWindow(ctx context.Context, path string, base url.Values, w window, emit func([]byte) error) ([]window, error) {
	query := listQuery(base)
	query.Set("created[gte]", strconv.FormatInt(w.lo, 10))
	query.Set("created[lt]", strconv.FormatInt(w.hi, 10))
	if w.after != "" {
		query.Set("starting_after", w.after)
	}
	page, err := p.page(ctx, path, query)
	if err != nil {
		return nil, err
	}
	for _, obj := range page.Data {
		if err := emit(obj); err != nil {
			return nil, err
		}
	}
	if !page.HasMore {
		return nil, nil
	}
	if len(page.Data) == 0 {
		return nil, fmt.Errorf("Stripe answered has_more with an empty page after %q: the list cannot progress", w.after)
	}
	newest, err := objectRef(page.Data[0])
	if err != nil {
		return nil, err
	}
	oldest, err := objectRef(page.Data[len(page.Data)-1])
	if err != nil {
		return nil, err
	}
	switch {
	case oldest.ID == w.after:
		return nil, fmt.Errorf("Stripe answered the same page twice (last object %q): the list cannot progress", oldest.ID)
	case oldest.Created < w.lo || newest.Created >= w.hi || oldest.Created > newest.Created:
		return nil, fmt.Errorf("Stripe answered objects created outside [%d, %d) or out of order (%s at %d, %s at %d)", w.lo, w.hi, newest.ID, newest.Created, oldest.ID, oldest.Created)
	}
	// The page holds every object created after oldest; the rest of w is
	// the objects of oldest's second after it, and every older one.
	rest := window{lo: w.lo, hi: oldest.Created + 1, after: oldest.ID}
	span := newest.Created - oldest.Created + 1 // seconds holding the page's objects
	estimate := int64(len(page.Data)) * (oldest.Created - w.lo) / span
	parts := min(maxSplit, estimate/max(1, p.windowRecords))
	if parts <= 1 || oldest.Created-w.lo < 2 {
		return []window{rest}, nil
	}
	// Split [w.lo, oldest) into parts of equal width; the newest part also
	// takes oldest's second, after the page's last object.
	width := (oldest.Created - w.lo + parts - 1) / parts
	var split []window
	for lo := w.lo; lo < oldest.Created; lo += width {
		split = append(split, window{lo: lo, hi: min(lo+width, oldest.Created)})
	}
	last := &split[len(split)-1]
	last.hi, last.after = rest.hi, rest.after
	return split, nil
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
