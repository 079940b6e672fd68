package fakestripe

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Page sizes of Stripe's lists.
const (
	defaultLimit  = 10  // Stripe's default page size
	maxLimit      = 100 // Stripe's maximum page size
	maxEventTypes = 20  // Stripe's maximum number of types[] on /v1/events
)

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	for _, k := range kindTable {
		mux.HandleFunc("GET "+k.path, s.handleList(k))
		if k.retrievable {
			mux.HandleFunc("GET "+k.path+"/{id}", s.handleRetrieve(k))
		}
	}
	mux.HandleFunc("GET /v1/account", s.handleAccount)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error",
			Message: fmt.Sprintf("Unrecognized request URL (%s: %s). fakestripe serves only the GET endpoints the connector reads.",
				r.Method, r.URL.Path)})
	})
	return mux
}

// listQuery is a parsed list request.
type listQuery struct {
	limit         int
	startingAfter string
	endingBefore  string
	lo, hi        int64 // created range, inclusive
	status        string
	eventType     string
	eventTypes    []string
	parent        string
}

func badParam(param, msg string) *apiError {
	return &apiError{Type: "invalid_request_error", Message: msg, Param: param}
}

// splitParam splits "created[gte]" into "created", "gte"; "expand[0]" and "expand[]" into "expand", "0"/"".
func splitParam(key string) (base, sub string, bracket bool) {
	i := strings.IndexByte(key, '[')
	if i < 0 || !strings.HasSuffix(key, "]") {
		return key, "", false
	}
	return key[:i], key[i+1 : len(key)-1], true
}

func isIndex(sub string) bool {
	if sub == "" {
		return true
	}
	_, err := strconv.Atoi(sub)
	return err == nil
}

func parseInt(param, v string) (int64, *apiError) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badParam(param, "Invalid integer: "+v)
	}
	return n, nil
}

// unknownParam is Stripe's answer to a parameter it does not know; for parameters Stripe knows but the
// fake does not implement it says so, rather than ignoring a filter and serving wrong data.
func unknownParam(k *kindSpec, key, base string) *apiError {
	if k != nil && k.stripeKnows(base) {
		return badParam(key, fmt.Sprintf("fakestripe does not implement parameter %s on %s (Stripe accepts it).", key, k.path))
	}
	return badParam(key, "Received unknown parameter: "+key)
}

func sortedKeys(q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func parseListQuery(q url.Values, k *kindSpec) (listQuery, *apiError) {
	lq := listQuery{limit: defaultLimit, lo: math.MinInt64, hi: math.MaxInt64}
	for _, key := range sortedKeys(q) {
		vals := q[key]
		v := vals[0]
		base, sub, bracket := splitParam(key)
		switch {
		case base == "limit" && !bracket:
			n, err := parseInt(key, v)
			if err != nil {
				return lq, err
			}
			if n < 1 {
				return lq, badParam(key, "This value must be greater than or equal to 1.")
			}
			if n > maxLimit {
				return lq, badParam(key, "This value must be less than or equal to 100.")
			}
			lq.limit = int(n)
		case base == "starting_after" && !bracket:
			lq.startingAfter = v
		case base == "ending_before" && !bracket:
			lq.endingBefore = v
		case base == "expand" && isIndex(sub):
			for _, e := range vals {
				if !strings.HasPrefix(e, "data.") {
					return lq, badParam(key, fmt.Sprintf("This property cannot be expanded (%s). You may want to try expanding 'data.%s' instead.", e, e))
				}
			}
		case base == "created" && k.createdFilter:
			n, err := parseInt(key, v)
			if err != nil {
				return lq, err
			}
			switch {
			case !bracket:
				lq.lo, lq.hi = max(lq.lo, n), min(lq.hi, n)
			case sub == "gt":
				lq.lo = max(lq.lo, n+1)
			case sub == "gte":
				lq.lo = max(lq.lo, n)
			case sub == "lt":
				lq.hi = min(lq.hi, n-1)
			case sub == "lte":
				lq.hi = min(lq.hi, n)
			default:
				return lq, unknownParam(k, key, base)
			}
		case base == "status" && !bracket && k.hasParam("status"):
			if !slices.Contains(subscriptionStatuses, v) {
				return lq, badParam(key, fmt.Sprintf("Invalid status: must be one of %s", strings.Join(subscriptionStatuses, ", ")))
			}
			lq.status = v
		case base == "type" && !bracket && k.hasParam("type"):
			lq.eventType = v
		case base == "types" && isIndex(sub) && k.hasParam("types"):
			lq.eventTypes = append(lq.eventTypes, vals...)
		case k.parentParam != "" && base == k.parentParam && !bracket:
			lq.parent = v
		default:
			return lq, unknownParam(k, key, base)
		}
	}
	if lq.startingAfter != "" && lq.endingBefore != "" {
		return lq, badParam("starting_after", "You may only specify one of these parameters: ending_before, starting_after.")
	}
	if lq.eventType != "" && len(lq.eventTypes) > 0 {
		return lq, badParam("type", "You may only specify one of these parameters: type, types.")
	}
	if len(lq.eventTypes) > maxEventTypes {
		return lq, badParam("types", "You may pass at most 20 event types.")
	}
	if k.parentParam != "" && lq.parent == "" {
		return lq, badParam(k.parentParam, "Missing required param: "+k.parentParam+".")
	}
	return lq, nil
}

var subscriptionStatuses = []string{"active", "all", "canceled", "ended", "incomplete", "incomplete_expired",
	"past_due", "paused", "trialing", "unpaid"}

// match applies the list filters that are not ranges.
func (s *Server) match(o *object, q *listQuery) bool {
	if o.spec.name == KindSubscription {
		st := s.stringField(o, "status")
		switch q.status {
		case "":
			return st != "canceled"
		case "all":
		case "ended":
			return st == "canceled" || st == "incomplete_expired"
		default:
			return st == q.status
		}
	}
	if o.spec.name == KindEvent {
		if len(q.eventTypes) > 0 && !slices.ContainsFunc(q.eventTypes, func(t string) bool { return eventTypeMatches(t, o.eventType) }) {
			return false
		}
		if q.eventType != "" && !eventTypeMatches(q.eventType, o.eventType) {
			return false
		}
	}
	return true
}

// eventTypeMatches matches Stripe's event type patterns, where "customer.*" matches every customer event.
func eventTypeMatches(pattern, typ string) bool {
	if p, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(typ, p)
	}
	return pattern == typ
}

// page selects one list page from list (sorted newest first). The caller holds s.mu.
func (s *Server) page(k *kindSpec, list []*object, q *listQuery) ([]*object, bool, *apiError) {
	// The created range is a contiguous run of the sorted list.
	a := sort.Search(len(list), func(i int) bool { return list[i].created <= q.hi })
	b := sort.Search(len(list), func(i int) bool { return list[i].created < q.lo })
	if b < a {
		b = a
	}
	cursorAt := func(param, id string) (*object, *apiError) {
		c, ok := s.byID[id]
		if !ok || c.spec != k || (c.deleted && k.deletion != canceled) {
			return nil, &apiError{Type: "invalid_request_error", Code: "resource_missing",
				Message: fmt.Sprintf("No such %s: '%s'", k.label(), id), Param: param}
		}
		return c, nil
	}
	var out []*object
	switch {
	case q.endingBefore != "":
		c, err := cursorAt("ending_before", q.endingBefore)
		if err != nil {
			return nil, false, err
		}
		end := sort.Search(len(list), func(i int) bool { return !newer(list[i], c) })
		for i := min(end, b) - 1; i >= a && len(out) <= q.limit; i-- {
			if s.match(list[i], q) {
				out = append(out, list[i])
			}
		}
		more := len(out) > q.limit
		out = out[:min(len(out), q.limit)]
		slices.Reverse(out)
		return out, more, nil
	case q.startingAfter != "":
		c, err := cursorAt("starting_after", q.startingAfter)
		if err != nil {
			return nil, false, err
		}
		a = max(a, sort.Search(len(list), func(i int) bool { return newer(c, list[i]) }))
	}
	for i := a; i < b && len(out) <= q.limit; i++ {
		if s.match(list[i], q) {
			out = append(out, list[i])
		}
	}
	more := len(out) > q.limit
	return out[:min(len(out), q.limit)], more, nil
}

func (s *Server) handleList(k *kindSpec) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.permit(w, r, k) {
			return
		}
		q, perr := parseListQuery(r.URL.Query(), k)
		if perr != nil {
			writeError(w, http.StatusBadRequest, *perr)
			return
		}
		parent := q.parent
		if k.parentPathParam != "" {
			parent = r.PathValue(k.parentPathParam)
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		coll := s.colls[k.name]
		list := coll.sorted
		if k.isChild() {
			p, ok := s.byID[parent]
			if !ok || p.spec.name != k.parent || (p.deleted && p.spec.deletion != canceled) {
				param := k.parentParam
				if param == "" {
					param = k.parentPathParam
				}
				writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error", Code: "resource_missing",
					Message: fmt.Sprintf("No such %s: '%s'", kindsByName[k.parent].label(), parent), Param: param})
				return
			}
			list = coll.byParent[parent]
		}
		data, more, perr := s.page(k, list, &q)
		if perr != nil {
			writeError(w, http.StatusBadRequest, *perr)
			return
		}
		var buf bytes.Buffer
		buf.Grow(len(data) * 2048)
		buf.WriteString(`{"object":"list","data":[`)
		for i, o := range data {
			if i > 0 {
				buf.WriteByte(',')
			}
			s.render(&buf, o)
		}
		buf.WriteString(`],"has_more":`)
		buf.WriteString(strconv.FormatBool(more))
		buf.WriteString(`,"url":`)
		buf.Write(jsonString(r.URL.Path))
		buf.WriteByte('}')
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf.Bytes())
	}
}

// checkRetrieveQuery allows only expand on a retrieve.
func checkRetrieveQuery(q url.Values) *apiError {
	for _, key := range sortedKeys(q) {
		if base, sub, _ := splitParam(key); base != "expand" || !isIndex(sub) {
			return badParam(key, "Received unknown parameter: "+key)
		}
	}
	return nil
}

func (s *Server) handleRetrieve(k *kindSpec) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.permit(w, r, k) {
			return
		}
		if perr := checkRetrieveQuery(r.URL.Query()); perr != nil {
			writeError(w, http.StatusBadRequest, *perr)
			return
		}
		id := r.PathValue("id")
		s.mu.RLock()
		defer s.mu.RUnlock()
		o, ok := s.byID[id]
		if !ok || o.spec != k || (o.deleted && k.deletion == removed) {
			writeError(w, http.StatusNotFound, apiError{Type: "invalid_request_error", Code: "resource_missing",
				Message: fmt.Sprintf("No such %s: '%s'", k.label(), id), Param: "id"})
			return
		}
		body := s.renderBytes(o)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	}
}

func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	if perr := checkRetrieveQuery(r.URL.Query()); perr != nil {
		writeError(w, http.StatusBadRequest, *perr)
		return
	}
	id := s.cfg.accountID
	if acct := r.Header.Get("Stripe-Account"); acct != "" {
		id = acct // authorised by ServeHTTP
	}
	over := []field{
		{"external_accounts", []byte(`{"data":[],"has_more":false,"object":"list","url":` +
			string(jsonString("/v1/accounts/"+id+"/external_accounts")) + `}`)},
		{"id", jsonString(id)},
	}
	var buf bytes.Buffer
	writeFields(&buf, templates()["account"], over)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}
