// Command bench measures a read's throughput: it runs the real connector
// binary against the in-repo fake Stripe with page latency, a request
// ceiling the fake enforces with 429s, and a data set of a given size, then
// prints records/s, requests/s against the ceiling, 429s, and the
// connector's CPU seconds and peak RSS.
//
//	go run ./bench                                  # the defaults below
//	go run ./bench -max-rps 100                     # config max_requests_per_second at the ceiling
//	go run ./bench -latency 0 -ceiling 0 -charges 1000000 -customers 0 -invoices 0 -subscriptions 0
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/jsonscan"
	"source-stripe/internal/procstat"
	"source-stripe/internal/testbin"
)

func main() {
	latency := flag.Duration("latency", 250*time.Millisecond, "page latency of the fake")
	jitter := flag.Duration("jitter", 100*time.Millisecond, "random latency added to each page (0..jitter)")
	ceiling := flag.Int("ceiling", 100, "requests per second the fake serves before answering 429 (0: no limit)")
	maxRPS := flag.Float64("max-rps", 0, "the connector's max_requests_per_second (0: its default for the key)")
	key := flag.String("key", "sk_live_bench", "API key the connector uses: sk_live_ (default budget 90/s) or sk_test_ (20/s)")
	charges := flag.Int("charges", 200_000, "charges")
	customers := flag.Int("customers", 50_000, "customers")
	invoices := flag.Int("invoices", 20_000, "invoices")
	lines := flag.Int("lines", 3, "lines per invoice")
	subscriptions := flag.Int("subscriptions", 10_000, "subscriptions")
	items := flag.Int("items", 2, "items per subscription")
	bankAccounts := flag.Int("bank-accounts", 0, "bank accounts per customer (read by the bank_accounts stream, one request per customer)")
	streams := flag.String("streams", "charges,customers,invoices,invoice_line_items,subscriptions,subscription_items", "streams to read")
	bin := flag.String("bin", "", "connector binary (default: build it)")
	timeline := flag.Bool("timeline", false, "print the requests answered in each second of the read")
	requestLog := flag.String("requests", "", "write every request to this file: seconds from the start to its arrival and to its answer, status, path and query")
	flag.Parse()

	if *bin == "" {
		dir, err := os.MkdirTemp("", "bench")
		check(err)
		defer os.RemoveAll(dir)
		*bin = filepath.Join(dir, "source-stripe")
		build := exec.Command("go", "build", "-o", *bin, ".")
		build.Stderr = os.Stderr
		check(build.Run())
	}

	var opts []fakestripe.Option
	if *latency > 0 || *jitter > 0 {
		opts = append(opts, fakestripe.WithLatency(*latency, *jitter))
	}
	if *ceiling > 0 {
		opts = append(opts, fakestripe.WithRateLimit(*ceiling))
	}
	var requests, limited, failed atomic.Int64
	var timesMu sync.Mutex
	var times []time.Time
	var logged []fakestripe.RequestRecord
	var start time.Time
	opts = append(opts, fakestripe.WithKeys(map[string]fakestripe.KeyInfo{*key: {}}),
		fakestripe.WithObserver(func(r fakestripe.RequestRecord) {
			requests.Add(1)
			if *timeline || *requestLog != "" {
				timesMu.Lock()
				times = append(times, time.Now())
				if *requestLog != "" {
					logged = append(logged, r)
				}
				timesMu.Unlock()
			}
			switch {
			case r.Status == http.StatusTooManyRequests:
				limited.Add(1)
			case r.Status != http.StatusOK:
				failed.Add(1)
			}
		}))
	fake := fakestripe.New(opts...)
	defer fake.Close()
	seeding := time.Now()
	end := time.Now().Add(-time.Hour).Truncate(time.Second)
	fake.Seed(fakestripe.Dataset{
		Start: end.Add(-365 * 24 * time.Hour), End: end,
		Counts: map[string]int{
			fakestripe.KindCharge: *charges, fakestripe.KindCustomer: *customers,
			fakestripe.KindInvoice: *invoices, fakestripe.KindSubscription: *subscriptions,
		},
		LinesPerInvoice: *lines, ItemsPerSubscription: *items, BankAccountsPerCustomer: *bankAccounts, PerSecond: 3, Seed: 1,
	})
	fmt.Fprintf(os.Stderr, "bench: seeded the fake in %s; reading %s\n", time.Since(seeding).Round(time.Millisecond), *streams)

	config := map[string]any{"account_id": fakestripe.DefaultAccountID, "client_secret": *key}
	if *maxRPS > 0 {
		config["max_requests_per_second"] = *maxRPS
	}
	raw, _ := json.Marshal(config)
	configPath := filepath.Join(os.TempDir(), fmt.Sprintf("bench-config-%d.json", os.Getpid()))
	check(os.WriteFile(configPath, raw, 0o600))
	defer os.Remove(configPath)

	cmd := exec.Command(*bin, "read", "--config", configPath, "--streams", *streams)
	cmd.Env = append(os.Environ(), "STRIPE_API_BASE="+fake.URL())
	out := &counter{ids: map[string]map[string]struct{}{}}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	requests.Store(0)
	limited.Store(0)
	failed.Store(0)
	timesMu.Lock()
	times, logged = nil, nil
	timesMu.Unlock()
	start = time.Now()
	check(cmd.Start())
	stop := make(chan struct{})
	peak := procstat.PeakRSS(cmd.Process.Pid, stop)
	// Sampled every 20 ms while the process runs.
	err := cmd.Wait()
	close(stop)
	elapsed := time.Since(start)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: the connector failed: %v\n%s", err, tail(stderr.String()))
		os.Exit(1)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	n, reqs := out.records.Load(), requests.Load()
	fmt.Printf("records          %d in %s\n", n, elapsed.Round(time.Millisecond))
	fmt.Printf("records/s        %.0f\n", float64(n)/elapsed.Seconds())
	fmt.Printf("requests/s       %.1f", float64(reqs)/elapsed.Seconds())
	if *ceiling > 0 {
		fmt.Printf(" (%.1f%% of the %d/s ceiling)", 100*float64(reqs-limited.Load())/elapsed.Seconds()/float64(*ceiling), *ceiling)
	}
	fmt.Printf("\n429s             %d of %d requests; %d failed\n", limited.Load(), reqs, failed.Load())
	lost, repeated := 0, 0
	for _, stream := range strings.Split(*streams, ",") {
		kind, ok := testbin.StreamKinds[stream]
		if !ok {
			continue
		}
		ids := out.ids[stream]
		lost += max(0, len(fake.Objects(kind.Kind))-len(ids))
	}
	for _, ids := range out.ids {
		repeated -= len(ids)
	}
	repeated += int(n)
	fmt.Printf("records lost     %d (%d emitted twice)\n", lost, repeated)
	fmt.Printf("connector CPU    %.2f s (%.2f s per 1M records)\n", cpu.Seconds(), cpu.Seconds()*1e6/float64(max(n, 1)))
	fmt.Printf("peak RSS         %.1f MiB\n", float64(peak())/(1<<20))
	if *requestLog != "" {
		var b strings.Builder
		for i, r := range logged {
			query, _ := url.QueryUnescape(r.RawQuery)
			fmt.Fprintf(&b, "%7.3f %7.3f %d %s?%s\n", r.Time.Sub(start).Seconds(), times[i].Sub(start).Seconds(), r.Status, r.Path, query)
		}
		check(os.WriteFile(*requestLog, []byte(b.String()), 0o644))
	}
	if *timeline {
		perSecond := map[int]int{}
		last := 0
		for _, t := range times {
			sec := int(t.Sub(start) / time.Second)
			perSecond[sec]++
			last = max(last, sec)
		}
		fmt.Print("requests/second ")
		for sec := 0; sec <= last; sec++ {
			fmt.Printf(" %d", perSecond[sec])
		}
		fmt.Println()
	}
	if lost > 0 || failed.Load() > 0 {
		fmt.Fprintln(os.Stderr, "bench: the read lost records or had requests fail")
		os.Exit(1)
	}
}

// counter counts RECORD lines and the distinct ids of each stream's
// records (to count the objects lost), without keeping the lines.
type counter struct {
	records atomic.Int64
	ids     map[string]map[string]struct{}
	partial []byte
}

func (c *counter) Write(p []byte) (int, error) {
	data := append(c.partial, p...)
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if line := data[:i]; bytes.HasPrefix(line, []byte(`{"type":"RECORD"`)) {
			c.records.Add(1)
			record := jsonscan.Member(line, "record")
			stream := jsonscan.String(record, "stream")
			if c.ids[stream] == nil {
				c.ids[stream] = map[string]struct{}{}
			}
			c.ids[stream][jsonscan.String(jsonscan.Member(record, "data"), "id")] = struct{}{}
		}
		data = data[i+1:]
	}
	c.partial = append(c.partial[:0], data...)
	return len(p), nil
}

func tail(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n") + "\n"
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
