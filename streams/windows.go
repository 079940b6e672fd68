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
	"sync/atomic"

	"source-stripe/internal/jsonscan"
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
	// minPartPages: a window is split for idle page slots into parts of
	// at least this many pages.
	minPartPages = 1
	// maxSplit bounds how many windows one window is split into at once;
	// a window still too dense splits again when its own first page comes.
	maxSplit = 16
	// minOpenWidth: a fresh range is opened as several windows only when
	// each is at least a day wide, so that follow polls and daily
	// incremental runs stay one request.
	minOpenWidth = 24 * 60 * 60
)

// pager reads Stripe lists: whole lists page by page, and created ranges
// window by window.
type pager struct {
	client        Lister
	windowRecords int64
	// workers is how many windows of one range are read at once.
	workers int
	// open is how many windows a wide range not yet started is read as
	// from its first request on: without it, every stream's first round is
	// one request whose page must come back before the range can be split,
	// and the budget idles for a round trip. Empty windows cost a request
	// each, so open stays a small share of the page slots.
	open int
	// slots, shared by every pager of a read, bounds the pages fetched or
	// emitted at once. A page's children are fetched inside its slot.
	slots chan struct{}
	// onPage runs after every page that arrives.
	onPage func() error
	// fanOut is set when emitting an object may send requests (the
	// children of a parent): a page's objects are then emitted side by
	// side on free page slots, so that a page of 100 parents is not 100
	// round trips in a row.
	fanOut bool
}

// window is a part of a created range still to read: lo <= created < hi,
// after the object after (when a page of it was read already).
type window struct {
	lo, hi int64
	after  string
	// boundary holds the ids of the previous page's objects of the second
	// the window continues in: the next page must not list them again.
	boundary []string
}

// readWindows reads every object of the list at path in the windows of
// queue and passes it to emit, from up to p.workers goroutines at once (emit
// must be safe for that). The windows are what is left to read of a range
// ending at end. progress(c, backlog) runs each time the lowest created not
// yet fully read rises to c: every object created below c has been emitted,
// and above it, up to end, everything but the backlog windows. c reaches
// end when nothing is left. Windows finish out of order, so c alone is the
// only promise a checkpoint may make without the backlog. progress is never
// called concurrently.
//
// When reading stops early (an error, or ctx canceled), readWindows returns
// the backlog: every window whose page was not emitted in full (one that
// failed midway, say on a child list, is read again whole).
//
// Windows adapt to the data: a wide range starts as p.open windows, and
// the first request of each asks for the whole window. When a window's
// first page says it has more, the page's span of seconds estimates how
// many objects the rest holds; a rest of more than windowRecords objects
// is split into windows read in parallel, a smaller one is paged through
// with starting_after, unless page slots are free: then it is split for
// them.
func (p *pager) readWindows(ctx context.Context, path string, base url.Values, queue []window, end int64, emit func([]byte) error, progress func(int64, []window) error) ([]window, error) {
	queue = slices.DeleteFunc(queue, func(w window) bool { return w.lo >= w.hi })
	if len(queue) == 0 {
		return nil, nil
	}
	queue = p.opened(queue)
	slices.SortFunc(queue, func(a, b window) int { return cmp.Compare(a.lo, b.lo) })
	var (
		mu      sync.Mutex
		wake    = sync.NewCond(&mu)
		reading = map[*window]bool{}
		cursor  = queue[0].lo
		failed  error
	)
	// backlog is what is left to read, oldest first.
	backlog := func() []window {
		out := slices.Clone(queue)
		for w := range reading {
			out = append(out, *w)
		}
		slices.SortFunc(out, func(a, b window) int { return cmp.Compare(a.lo, b.lo) })
		return out
	}
	// lowest is the cursor: the lo of the oldest window not fully read.
	lowest := func() int64 {
		c := end
		if len(queue) > 0 {
			c = queue[0].lo
		}
		for w := range reading {
			c = min(c, w.lo)
		}
		return c
	}
	fail := func(err error) {
		if failed == nil {
			failed = err
		}
	}
	// idle is how many more windows could be read at once right now: free
	// page slots that this range has workers for. A window that has more
	// is split for them, so that the end of a read is not a few windows
	// paged through alone while the budget goes unused.
	idle := func() int {
		mu.Lock()
		defer mu.Unlock()
		return min(max(0, p.workers-len(reading)-len(queue)), p.freeSlots())
	}
	work := func() {
		for {
			mu.Lock()
			for len(queue) == 0 && len(reading) > 0 && failed == nil {
				wake.Wait()
			}
			if failed != nil || len(queue) == 0 || ctx.Err() != nil {
				mu.Unlock()
				return
			}
			mu.Unlock()
			// A page slot first, then the oldest window queued at that
			// moment: windows are read oldest first as slots free up, so
			// the cursor moves steadily. (A worker that took its window
			// before its slot could hold the oldest one back behind newer
			// ones for as long as the slots stayed busy.)
			if err := p.acquire(ctx); err != nil {
				return // canceled: readWindows returns ctx's error
			}
			mu.Lock()
			if failed != nil || len(queue) == 0 || ctx.Err() != nil {
				mu.Unlock()
				p.release()
				continue
			}
			w := queue[0]
			queue = queue[1:]
			reading[&w] = true
			mu.Unlock()

			// w stays in reading, and so in every checkpoint's backlog,
			// until its page is emitted; then it leaves reading and what is
			// left of it is queued, in one step under mu. So a checkpoint
			// never counts a page not emitted yet, and never waits for one
			// being emitted (with its children, that can take seconds).
			page, rest, err := p.readWindow(ctx, path, base, w, idle)
			if err == nil {
				err = p.emitPage(page, emit)
			}
			p.release()
			mu.Lock()
			delete(reading, &w)
			if err != nil {
				rest = nil
				queue = append(queue, w) // not emitted: still to read
				slices.SortFunc(queue, func(a, b window) int { return cmp.Compare(a.lo, b.lo) })
				fail(fmt.Errorf("reading %s created in [%d, %d): %w", path, w.lo, w.hi, err))
			}
			for _, r := range rest {
				i, _ := slices.BinarySearchFunc(queue, r.lo, func(q window, lo int64) int { return cmp.Compare(q.lo, lo) })
				queue = slices.Insert(queue, i, r)
			}
			if c := lowest(); failed == nil && c > cursor {
				cursor = c
				if err := progress(c, backlog()); err != nil {
					fail(err)
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
	if failed == nil && ctx.Err() != nil {
		failed = ctx.Err()
	}
	if failed != nil {
		return backlog(), failed
	}
	return nil, nil
}

// opened splits each window not started yet (no page of it read) into
// p.open windows of equal width, when each is at least minOpenWidth wide.
func (p *pager) opened(queue []window) []window {
	var out []window
	for _, w := range queue {
		parts := min(int64(p.open), (w.hi-w.lo)/minOpenWidth)
		if w.after != "" || parts <= 1 {
			out = append(out, w)
			continue
		}
		out = append(out, splitEven(w.lo, w.hi, parts)...)
	}
	return out
}

// splitEven splits [lo, hi) into parts windows of equal width (the last
// one may be narrower).
func splitEven(lo, hi, parts int64) []window {
	width := (hi - lo + parts - 1) / parts
	var split []window
	for l := lo; l < hi; l += width {
		split = append(split, window{lo: l, hi: min(l+width, hi)})
	}
	return split
}

// fetchesChildren sets the pager up for emits that send requests (the
// children of each parent, when the parent does not embed them): a page's
// objects go out side by side, and
// windows split down to about a page, since every page of parents is a
// hundred requests: the more pages of parents are in flight, the fewer
// slots idle while one waits for its next page.
func (p *pager) fetchesChildren() {
	p.fanOut = true
	p.windowRecords = min(p.windowRecords, pageLimit)
}

// emitPage passes every object of page to emit, side by side when p.fanOut:
// the caller, which holds a page slot, is joined by a helper for each slot
// that is free while objects are left, and each helper holds its slot while
// it works, so the requests in flight stay bounded by the slots. It returns
// the first error; then the objects no one has started are not emitted.
func (p *pager) emitPage(page stripeapi.Page, emit func([]byte) error) error {
	n := int64(len(page.Data))
	if !p.fanOut || p.slots == nil || n < 2 {
		return emitAll(page, emit)
	}
	var (
		next    atomic.Int64 // the next object to emit
		stop    atomic.Bool
		first   error
		once    sync.Once
		helpers sync.WaitGroup
	)
	work := func() bool {
		i := next.Add(1) - 1
		if i >= n || stop.Load() {
			return false
		}
		if err := emit(page.Data[i]); err != nil {
			once.Do(func() { first = err })
			stop.Store(true)
			return false
		}
		return true
	}
	hired := int64(0)
	for {
		for hired < n-next.Load()-1 && p.tryAcquire() {
			hired++
			helpers.Add(1)
			go func() {
				defer helpers.Done()
				defer p.release()
				for work() {
				}
			}()
		}
		if !work() {
			break
		}
	}
	helpers.Wait()
	return first
}

func emitAll(page stripeapi.Page, emit func([]byte) error) error {
	for _, obj := range page.Data {
		if err := emit(obj); err != nil {
			return err
		}
	}
	return nil
}

// acquire waits for a page slot; release gives it back.
func (p *pager) acquire(ctx context.Context) error {
	if p.slots == nil {
		return nil
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// tryAcquire takes a page slot if one is free now.
func (p *pager) tryAcquire() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (p *pager) release() {
	if p.slots != nil {
		<-p.slots
	}
}

// freeSlots is how many page slots nobody holds (a moment's snapshot).
func (p *pager) freeSlots() int {
	if p.slots == nil {
		return p.workers
	}
	return cap(p.slots) - len(p.slots)
}

// readWindow reads one page of w and returns it with what of w is left to
// read: nothing, w itself after the page's last object, or w split.
func (p *pager) readWindow(ctx context.Context, path string, base url.Values, w window, idle func() int) (page stripeapi.Page, rest []window, err error) {
	query := listQuery(base)
	query.Set("created[gte]", strconv.FormatInt(w.lo, 10))
	query.Set("created[lt]", strconv.FormatInt(w.hi, 10))
	if w.after != "" {
		query.Set("starting_after", w.after)
	}
	page, err = p.page(ctx, path, query)
	if w.after != "" && stripeapi.AnchorGone(err) {
		// The object w continues after was deleted since: list w from
		// its top again. The previous page's objects of w's last second
		// (its boundary) come again: they are dropped from the page once
		// it has served to split and continue, not taken for a broken
		// list. (A window resumed from a state has no boundary: those
		// objects are emitted twice.)
		query.Del("starting_after")
		if page, err = p.page(ctx, path, query); err == nil && len(w.boundary) > 0 {
			emitted := w.boundary
			w.boundary = nil
			defer func() {
				page.Data = slices.DeleteFunc(slices.Clone(page.Data), func(raw json.RawMessage) bool {
					return slices.Contains(emitted, jsonscan.String(raw, "id"))
				})
			}()
		}
	}
	if err != nil {
		return page, nil, err
	}
	malformed := func(format string, args ...any) error {
		return &stripeapi.ResponseError{Path: path, Problem: fmt.Sprintf(format, args...)}
	}
	var newest, oldest ref
	if len(page.Data) > 0 {
		if newest, err = objectRef(page.Data[0]); err != nil {
			return page, nil, malformed("%v", err)
		}
		if oldest, err = objectRef(page.Data[len(page.Data)-1]); err != nil {
			return page, nil, malformed("%v", err)
		}
		// Splitting and continuing rely on the page's order and range;
		// a last page is only emitted. (stripe-mock, which ignores
		// filters, answers one object of 2009 to every range.)
		if page.HasMore && (oldest.Created < w.lo || newest.Created >= w.hi || oldest.Created > newest.Created) {
			return page, nil, malformed("Stripe answered objects created outside [%d, %d) or out of order (%s at %d, %s at %d)", w.lo, w.hi, newest.ID, newest.Created, oldest.ID, oldest.Created)
		}
	}
	// The objects of the second the last page ended in come first.
	for i := 0; i < len(page.Data) && len(w.boundary) > 0; i++ {
		r, err := objectRef(page.Data[i])
		if err != nil {
			return page, nil, malformed("%v", err)
		}
		if r.Created != w.hi-1 {
			break
		}
		if slices.Contains(w.boundary, r.ID) {
			return page, nil, malformed("Stripe listed %s twice, on two pages of one list: the list cannot be trusted", r.ID)
		}
	}
	if !page.HasMore { // (stripeapi never gives has_more with an empty page)
		return page, nil, nil
	}
	// The page holds every object created after oldest; the rest of w is
	// the objects of oldest's second after it, and every older one.
	next := window{lo: w.lo, hi: oldest.Created + 1, after: oldest.ID, boundary: boundaryIDs(page, oldest.Created)}
	span := newest.Created - oldest.Created + 1 // seconds holding the page's objects
	estimate := int64(len(page.Data)) * (oldest.Created - w.lo) / span
	parts := min(maxSplit, estimate/max(1, p.windowRecords))
	if n := int64(idle()); n > 0 {
		// Use what is idle, as long as each part holds a page or more: a
		// part ends in a partly filled page, one more request.
		parts = max(parts, min(n+1, estimate/(minPartPages*pageLimit)))
	}
	if parts <= 1 || oldest.Created-w.lo < 2 {
		return page, []window{next}, nil
	}
	// Split [w.lo, oldest) into parts of equal width; the newest part also
	// takes oldest's second, after the page's last object.
	split := splitEven(w.lo, oldest.Created, parts)
	last := &split[len(split)-1]
	last.hi, last.after, last.boundary = next.hi, next.after, next.boundary
	return page, split, nil
}

// boundaryIDs returns the ids of the page's objects created in second.
func boundaryIDs(page stripeapi.Page, second int64) []string {
	var ids []string
	for i := len(page.Data) - 1; i >= 0; i-- {
		r, err := objectRef(page.Data[i])
		if err != nil || r.Created != second {
			break
		}
		ids = append(ids, r.ID)
	}
	return ids
}

// paginate reads every page of a list. (stripeapi checks that each page
// can be followed: has_more is never on an empty page, and a page never
// repeats the object it starts after.)
func (p *pager) paginate(ctx context.Context, path string, query url.Values, emit func([]byte) error) error {
	var last []json.RawMessage // the last page: where to go on from
	for {
		page, err := p.page(ctx, path, query)
		for stripeapi.AnchorGone(err) && query.Get("starting_after") != "" {
			// The object to start after was deleted since: start after
			// the one before it on the last page (nothing between them is
			// left), or, when the whole page is gone, from the top again,
			// which emits the earlier pages twice.
			anchor := query.Get("starting_after")
			if i := slices.IndexFunc(last, func(raw json.RawMessage) bool { return jsonscan.String(raw, "id") == anchor }); i > 0 {
				query.Set("starting_after", jsonscan.String(last[i-1], "id"))
			} else {
				query.Del("starting_after")
			}
			page, err = p.page(ctx, path, query)
		}
		if err != nil {
			return err
		}
		if err := emitAll(page, emit); err != nil || !page.HasMore {
			return err
		}
		r, err := objectRef(page.Data[len(page.Data)-1])
		if err != nil {
			return err
		}
		last = page.Data
		query.Set("starting_after", r.ID)
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
	ID      string
	Created int64
}

func objectRef(raw json.RawMessage) (ref, error) {
	r := ref{ID: jsonscan.String(raw, "id")}
	if r.ID == "" {
		return r, fmt.Errorf("a list item has no id: %.60s", raw)
	}
	var ok bool
	if r.Created, ok = jsonscan.Int(raw, "created"); !ok {
		r.Created, _ = jsonscan.Int(raw, "date") // invoice items' creation time
	}
	return r, nil
}
