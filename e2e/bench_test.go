package e2e

import (
	"bytes"
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
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
				cmd.Env = []string{"STRIPE_API_BASE=" + fake.URL(), "STRIPE_API_KEY=" + fakestripe.DefaultKey}
				out := &lineCounter{}
				cmd.Stdout, cmd.Stderr = out, io.Discard
				if err := cmd.Run(); err != nil {
					b.Fatal(err)
				}
				records += out.lines
				requests += int64(fake.RequestCount())
				cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > maxRSS {
					maxRSS = ru.Maxrss
				}
			}
			elapsed := time.Since(start).Seconds()
			b.ReportMetric(float64(records)/elapsed, "lines/s")
			b.ReportMetric(float64(requests)/elapsed, "requests/s")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(maxRSS)/1024, "peak-RSS-MiB")
		})
	}
}
