// Command fakestripe serves a fake Stripe API on a loopback address, so that a person can try the
// connector without a Stripe account:
//
//	go run ./acceptance-tests/cmd/fakestripe --mutate-every 10s
//	STRIPE_API_BASE=http://127.0.0.1:12111 STRIPE_API_KEY=sk_test_fake ./source-stripe read
//
// The data is internal/fakestripe's default dataset (a few hundred objects over the last 30 days),
// scaled with --scale or --count; --mutate-every changes a few objects periodically so that repeated
// incremental reads have something new to find.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"source-stripe/internal/fakestripe"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// counts is a --count flag: kind=N pairs, comma-separated or repeated.
type counts map[string]int

func (c counts) String() string {
	var parts []string
	for k, n := range c {
		parts = append(parts, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (c counts) Set(v string) error {
	for _, pair := range strings.Split(v, ",") {
		kind, n, ok := strings.Cut(strings.TrimSpace(pair), "=")
		num, err := strconv.Atoi(n)
		if !ok || err != nil || num < 0 {
			return fmt.Errorf("want kind=N, got %q", pair)
		}
		if !isTopLevel(kind) {
			return fmt.Errorf("unknown kind %q (one of: %s)", kind, strings.Join(topLevelKinds(), ", "))
		}
		c[kind] = num
	}
	return nil
}

func topLevelKinds() []string {
	var out []string
	for _, k := range fakestripe.Kinds() {
		if !strings.Contains(fakestripe.ListPath(k), "{") && k != fakestripe.KindSubscriptionItem {
			out = append(out, k)
		}
	}
	return out
}

func isTopLevel(kind string) bool {
	for _, k := range topLevelKinds() {
		if k == kind {
			return true
		}
	}
	return false
}

func run(args []string, stderr io.Writer) int {
	flags := flag.NewFlagSet("fakestripe", flag.ContinueOnError)
	flags.SetOutput(stderr)
	addr := flags.String("addr", "127.0.0.1:12111", "loopback address to listen on")
	seed := flags.Int64("seed", 1, "seed of ids and relations; the same seed gives the same data")
	scale := flags.Float64("scale", 1, "multiply the default dataset's object counts")
	days := flags.Int("days", 30, "spread objects over this many days before now")
	key := flags.String("key", fakestripe.DefaultKey, "the secret API key the fake accepts")
	latency := flags.Duration("latency", 0, "delay every answer by this much")
	jitter := flags.Duration("jitter", 0, "add a random delay below this to every answer")
	rateLimit := flags.Int("rate-limit", 0, "answer 429 past this many requests a second (Stripe test mode: 25); 0: no limit")
	mutateEvery := flags.Duration("mutate-every", 0, "create, update and delete a few objects this often (0: never)")
	quiet := flags.Bool("quiet", false, "do not log requests")
	extra := counts{}
	flags.Var(extra, "count", "object counts per kind overriding the scaled defaults, e.g. charge=100000,customer=500")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *days < 1 {
		fmt.Fprintln(stderr, "fakestripe: --days must be at least 1")
		return 2
	}

	opts := []fakestripe.Option{
		fakestripe.WithKeys(map[string]fakestripe.KeyInfo{*key: {}}),
		fakestripe.WithLatency(*latency, *jitter),
		fakestripe.WithRateLimit(*rateLimit),
		fakestripe.WithMaxRequests(1000),
	}
	if !*quiet {
		opts = append(opts, fakestripe.WithObserver(logRequest(stderr)))
	}
	s, err := fakestripe.Listen(*addr, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "fakestripe: %v\n", err)
		return 1
	}
	d := fakestripe.DefaultDataset().Scale(*scale)
	d.End = time.Now().Truncate(time.Second)
	d.Start = d.End.Add(-time.Duration(*days) * 24 * time.Hour)
	d.Seed = *seed
	for k, n := range extra {
		d.Counts[k] = n
	}
	started := time.Now()
	s.Seed(d)
	total := 0
	for _, k := range fakestripe.Kinds() {
		total += s.Count(k)
	}

	fmt.Fprintf(stderr, `fakestripe: %d objects from %s to %s, seeded in %v
  base URL: %s
  API key:  %s
Read it with the connector:
  STRIPE_API_BASE=%s STRIPE_API_KEY=%s ./source-stripe read > out.jsonl
Read again from where it stopped:
  jq -c 'select(.type == "STATE") | .state' out.jsonl | jq -s 'group_by(.stream.stream_descriptor.name) | map(last)' > state.json
  STRIPE_API_BASE=%s STRIPE_API_KEY=%s ./source-stripe read --state state.json
Stop with Ctrl-C.
`, total, d.Start.UTC().Format(time.RFC3339), d.End.UTC().Format(time.RFC3339), time.Since(started).Round(time.Millisecond),
		s.URL(), *key, s.URL(), *key, s.URL(), *key)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *mutateEvery > 0 {
		go mutate(ctx, s, *mutateEvery, *seed, stderr)
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "fakestripe: stopping")
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(shutdown); err != nil {
		s.Close()
	}
	return 0
}

// logRequest logs one answered request.
func logRequest(w io.Writer) func(fakestripe.RequestRecord) {
	return func(r fakestripe.RequestRecord) {
		q := r.RawQuery
		if q != "" {
			q = "?" + q
		}
		fmt.Fprintf(w, "%s %d %s %s%s\n", r.Time.Format("15:04:05.000"), r.Status, r.Method, r.Path, q)
	}
}

// mutate changes a few objects every interval, the way a live account does: new customers and
// charges, updated customers, a deleted customer, a canceled subscription, a new invoice line.
func mutate(ctx context.Context, s *fakestripe.Server, every time.Duration, seed int64, log io.Writer) {
	rng := rand.New(rand.NewPCG(uint64(seed), 42))
	t := time.NewTicker(every)
	defer t.Stop()
	for round := 1; ; round++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := s.Now()
		var done []string
		cus := s.Create(fakestripe.KindCustomer, now, map[string]any{"email": fmt.Sprintf("round%d@example.com", round)})
		done = append(done, "created "+cus)
		ch := s.Create(fakestripe.KindCharge, now, map[string]any{"customer": cus})
		done = append(done, "created "+ch)
		if ids := s.IDs(fakestripe.KindCustomer); len(ids) > 1 {
			id := ids[rng.IntN(len(ids))]
			s.Update(fakestripe.KindCustomer, id, now, map[string]any{"metadata": map[string]string{"round": strconv.Itoa(round)}})
			done = append(done, "updated "+id)
		}
		if ids := s.IDs(fakestripe.KindInvoice); len(ids) > 0 {
			id := ids[rng.IntN(len(ids))]
			done = append(done, "added "+s.AddChild(fakestripe.KindInvoiceLineItem, id, now)+" to "+id)
		}
		if round%3 == 0 {
			if ids := s.IDs(fakestripe.KindCustomer); len(ids) > 1 {
				id := ids[len(ids)-1-rng.IntN(len(ids)/2)]
				s.Delete(fakestripe.KindCustomer, id, now)
				done = append(done, "deleted "+id)
			}
			for _, id := range s.IDs(fakestripe.KindSubscription) {
				if sub, _ := s.Object(fakestripe.KindSubscription, id); !strings.Contains(string(sub), `"status":"canceled"`) {
					s.Delete(fakestripe.KindSubscription, id, now)
					done = append(done, "canceled "+id)
					break
				}
			}
		}
		fmt.Fprintf(log, "fakestripe: mutation round %d: %s\n", round, strings.Join(done, ", "))
	}
}
