package stripeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"source-stripe/internal/jsonscan"
	"strings"
	"sync"
	"testing"
	"time"
)

// fuzzKey stands for the key in fuzzed bodies: the fuzzer may put it
// anywhere, and the server sends the real key there, as a server that
// echoes its request would.
const fuzzKey = "KEY"

var pageSeeds = []struct {
	status      uint16
	shouldRetry byte
	body        string
}{
	{200, 0, okPage},
	{200, 0, `{"object":"list","data":[],"has_more":false}`},
	{200, 0, `{"object":"list","data":[{"id":"ch_2","created":2},{"id":"ch_1","created":1}],"has_more":true}`},
	{200, 0, `{"object":"list","data":[],"has_more":true}`},
	{200, 0, `{"object":"list","data":[1,"x",null,[]],"has_more":false}`},
	{200, 0, `{"object":"list","data":[{"id":"ch_1"},{"id":"ch_1"}],"has_more":false}`},
	{200, 0, `{"object":"list","data":[{"id":"ch_after"}],"has_more":true}`},
	{200, 0, `{"object":"list","data":[{"\u0069d":"ch_1"}],"has_more":false}`},
	{200, 0, `{"object":"list","data":[{"id":"ch_1","nested":{"id":7,"s":"}]\"{"}}],"has_more":false}`},
	{200, 0, `{"object":"list","has_more":false}`},
	{200, 0, `{"object":"charge","id":"ch_1"}`},
	{200, 0, `{"object":"list","data":[{"id":"`},
	{200, 0, `<html><body>KEY</body></html>`},
	{200, 0, ``},
	{200, 0, `null`},
	{401, 0, `{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: KEY"}}`},
	{403, 0, `{"error":{"type":"invalid_request_error","message":"The provided key 'KEY' does not have the required permissions"}}`},
	{404, 0, `{"error":{"type":"invalid_request_error","code":"resource_missing","message":"No such customer: 'cus_1'"}}`},
	{429, 2, `{"error":{"type":"invalid_request_error","code":"rate_limit"}}`},
	{500, 0, `{"detail":"KEY"}`},
	{502, 0, `<html>Bad Gateway KEY</html>`},
	{400, 1, `{"error":{"type":"api_error","message":"retry KEY"}}`},
	{153, 0, `{"oBjeCt":"list","dAtA":[]}`}, // HTTP 353, found by fuzzing: stripe-go took it for success
}

// FuzzListPage: whatever status and body a server answers, ListPage
// neither panics nor hangs, fails with a typed error that never shows the
// key, and returns only pages whose items are distinct objects with ids.
//
//	go test ./stripeapi -run '^$' -fuzz FuzzListPage -fuzztime 20s
func FuzzListPage(f *testing.F) {
	for _, s := range pageSeeds {
		f.Add(s.status, s.shouldRetry, []byte(s.body))
	}
	var mu sync.Mutex
	var status int
	var header http.Header
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		st, h, b := status, header, body
		mu.Unlock()
		for k, v := range h {
			w.Header()[k] = v
		}
		w.Header().Set("Request-Id", "req_fuzz")
		w.WriteHeader(st)
		w.Write(b)
	}))
	f.Cleanup(srv.Close)
	c := New(Options{APIKey: key, BaseURL: srv.URL, MaxAttempts: 2, RequestTimeout: 5 * time.Second,
		Sleep: func(context.Context, time.Duration) error { return nil }})

	f.Fuzz(func(t *testing.T, st uint16, shouldRetry byte, b []byte) {
		mu.Lock()
		status = 200 + int(st)%400 // 1xx are not answers
		header = http.Header{}
		switch shouldRetry % 3 {
		case 1:
			header.Set("Stripe-Should-Retry", "true")
		case 2:
			header.Set("Stripe-Should-Retry", "false")
		}
		body = bytes.ReplaceAll(b, []byte(fuzzKey), []byte(key))
		mu.Unlock()

		page, err := c.ListPage(context.Background(), "/v1/charges", url.Values{"starting_after": {"ch_after"}})
		if err != nil {
			var apiErr *APIError
			var respErr *ResponseError
			if !errors.As(err, &apiErr) && !errors.As(err, &respErr) {
				t.Fatalf("an untyped error %T: %v", err, err)
			}
			for _, text := range []string{err.Error(), Classify(err, "charges").Error()} {
				if strings.Contains(text, key) {
					t.Fatalf("the key shows in %q", text)
				}
			}
			return
		}
		if status >= 300 {
			t.Fatalf("HTTP %d accepted as a page", status)
		}
		if page.HasMore && len(page.Data) == 0 {
			t.Fatal("an empty page with has_more")
		}
		ids := map[string]bool{}
		for _, raw := range page.Data {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(raw, &obj); err != nil {
				t.Fatalf("an item that is not an object: %s", raw)
			}
			id := jsonscan.String(raw, "id")
			if ok := id != ""; !ok || ids[id] || id == "ch_after" {
				t.Fatalf("item %s: id %q (ok %v), seen before: %v", raw, id, ok, ids[id])
			}
			ids[id] = true
		}
	})
}
