package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/procstat"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// lineCounter counts output lines without keeping them.
type lineCounter struct{ lines, bytes int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines += int64(bytes.Count(p, []byte{'\n'}))
	c.bytes += int64(len(p))
	return len(p), nil
}

// BenchmarkRead runs the real binary against the in-process fake (no added
// latency) and reports records/s, requests/s, CPU seconds and peak RSS.
//
//	go test ./e2e -run '^$' -bench Read -benchtime 3x
func BenchmarkRead(b *testing.B) {
	for _, bc := range []struct {
		name    string
		streams string
		counts  map[string]int
	}{
		{"charges_100k", "charges", map[string]int{fakestripe.KindCharge: 100_000}},
		{"invoice_lines_5k_invoices", "invoice_line_items", map[string]int{fakestripe.KindInvoice: 5_000}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			fake := fakestripe.New()
			defer fake.Close()
			d := fakestripe.DefaultDataset()
			d.Counts = bc.counts
			d.Start = d.End.Add(-365 * 24 * time.Hour)
			fake.Seed(d)
			bin := testbin.Path(b)
			b.ResetTimer()
			var records, requests int64
			var cpu time.Duration
			var maxRSS int64
			start := time.Now()
			for i := 0; i < b.N; i++ {
				fake.ResetRequests()
				cmd := exec.Command(bin, "read", "--streams", bc.streams)
				cmd.Env = append(testbin.BaseEnv(), "STRIPE_API_BASE="+fake.URL(), "STRIPE_API_KEY="+fakestripe.DefaultKey)
				out := &lineCounter{}
				cmd.Stdout, cmd.Stderr = out, io.Discard
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				stop := make(chan struct{})
				peak := procstat.PeakRSS(cmd.Process.Pid, stop)
				err := cmd.Wait()
				close(stop)
				if err != nil {
					b.Fatal(err)
				}
				maxRSS = max(maxRSS, peak())
				records += out.lines
				requests += int64(fake.RequestCount())
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
			elapsed := time.Since(start).Seconds()
			b.ReportMetric(float64(records)/elapsed, "lines/s")
			b.ReportMetric(float64(requests)/elapsed, "requests/s")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(maxRSS)/(1<<20), "peak-RSS-MiB")
		})
	}
}

// BenchmarkFollowLatency measures how long a change takes from Stripe to a
// RECORD on stdout in follow mode at the default poll interval (500 ms):
// one customer update per iteration, 50-250 ms apart.
//
//	go test ./e2e -run '^$' -bench FollowLatency -benchtime 60x
func BenchmarkFollowLatency(b *testing.B) {
	fake := fakestripe.New()
	defer fake.Close()
	fake.Seed(fakestripe.DefaultDataset())
	env := []string{"STRIPE_API_BASE=" + fake.URL(), "STRIPE_API_KEY=" + fakestripe.DefaultKey}
	p := testbin.Start(b, env, "read", "--streams", "customers", "--follow")
	p.WaitFor(30*time.Second, "the end of the backfill", following([]string{"customers"}))
	ids := fake.IDs(fakestripe.KindCustomer)
	fake.ResetRequests()
	changed := make([]time.Time, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		changed[i] = time.Now()
		fake.Update(fakestripe.KindCustomer, ids[i%len(ids)], time.Time{}, map[string]any{"description": fmt.Sprintf("change-%d", i)})
		time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
	}
	seenAt := map[int]time.Time{}
	p.WaitFor(30*time.Second, "every change", func(msgs []protocol.Message) bool {
		for _, m := range msgs {
			if m.Type != protocol.TypeRecord {
				continue
			}
			var c struct{ Description string }
			json.Unmarshal(m.Record.Data, &c)
			var n int
			if _, err := fmt.Sscanf(c.Description, "change-%d", &n); err == nil {
				seenAt[n] = time.Time{}
			}
		}
		return len(seenAt) == b.N
	})
	b.StopTimer()
	msgs, arrived := p.Messages()
	for i, m := range msgs {
		if m.Type != protocol.TypeRecord {
			continue
		}
		var c struct{ Description string }
		json.Unmarshal(m.Record.Data, &c)
		var n int
		if _, err := fmt.Sscanf(c.Description, "change-%d", &n); err == nil && seenAt[n].IsZero() {
			seenAt[n] = arrived[i]
		}
	}
	requests := fake.RequestCount()
	p.Stop(syscall.SIGTERM, 10*time.Second)
	lat := make([]float64, 0, b.N)
	for i, t0 := range changed {
		lat = append(lat, float64(seenAt[i].Sub(t0).Milliseconds()))
	}
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-ms")
	b.ReportMetric(lat[(len(lat)*99)/100], "p99-ms")
	b.ReportMetric(lat[len(lat)-1], "max-ms")
	b.ReportMetric(float64(requests)/float64(b.N), "requests/change")
}
