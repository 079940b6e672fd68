// Package procstat reads a running process's peak resident memory from
// /proc. The rusage a parent gets for its child is no good for this: on
// Linux the child's maxrss includes the parent's memory it was forked from,
// so a benchmark holding a large fake in memory would report that instead.
package procstat

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// PeakRSS follows pid's peak resident set (VmHWM) until stop is closed, and
// returns the highest value seen, in bytes.
func PeakRSS(pid int, stop <-chan struct{}) func() int64 {
	var peak atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, err := vmHWM(pid); err == nil && kb*1024 > peak.Load() {
				peak.Store(kb * 1024)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		<-done
		return peak.Load()
	}
}

func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no VmHWM for %d", pid)
}
