package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"source-stripe/catalog"
	"source-stripe/protocol"
	"source-stripe/state"
	"source-stripe/streams"
)

// errStdinClosed stops a capture: the runtime closes stdin to stop the
// connector.
var errStdinClosed = errors.New("stdin closed")

// capture runs Open: it picks the bindings of this shard, resumes each from
// its state, answers Opened and runs the read pipeline in follow mode until
// stdin ends or ctx is canceled (SIGTERM). It returns nil after such a stop,
// once the final checkpoints are written.
func (s *session) capture(ctx context.Context, open *OpenRequest, dec *json.Decoder) error {
	cfg, err := s.config(open.Capture.Config)
	if err != nil {
		return err
	}
	shard := fullRange
	if open.Range != nil {
		shard = *open.Range
	}
	bindings, cc, states, err := plan(open, shard)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	var mu sync.Mutex
	var failure error
	fail := func(err error) {
		mu.Lock()
		if failure == nil {
			failure = err
		}
		mu.Unlock()
		stop(err)
	}
	go watchStdin(dec, stop, fail)

	names := make([]string, 0, len(bindings))
	for name := range bindings {
		names = append(names, name)
	}
	sort.Strings(names)
	s.log.infof("capture %s: this shard (keys %08x-%08x) captures %d of %d bindings: %s",
		open.Capture.Name, uint32(shard.KeyBegin), uint32(shard.KeyEnd), len(bindings), len(open.Capture.Bindings), strings.Join(names, ", "))

	if len(bindings) == 0 {
		// Another shard captures every binding. This one still runs, as
		// the runtime expects, until it is stopped.
		if err := s.out.write(Response{Opened: &Opened{}}); err != nil {
			return err
		}
		<-ctx.Done()
		mu.Lock()
		defer mu.Unlock()
		return failure
	}

	jobs, err := catalog.Plan(cc, states)
	if err != nil {
		return err
	}
	client, err := s.client(cfg)
	if err != nil {
		return err
	}
	acct, err := client.ResolveAccount(ctx, cfg.AccountID)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return err
	}
	if acct.Warning != "" {
		s.log.warn(acct.Warning)
	}
	if err := s.out.write(Response{Opened: &Opened{}}); err != nil {
		return err
	}

	// The read writes Airbyte messages into a pipe; the translator reads
	// them on the other end and writes Flow's responses.
	pr, pw := io.Pipe()
	airbyte := protocol.NewWriter(pw)
	airbyte.Redact(cfg.APIKey)
	tr := &translator{out: s.out, log: s.log, fail: fail, bindings: bindings}
	translated := make(chan error, 1)
	go func() {
		err := tr.run(pr)
		if err != nil {
			fail(err)
			pr.CloseWithError(err) // the read's writes fail instead of blocking
		}
		translated <- err
	}()

	reader := &streams.Reader{
		Client:       acct.Client,
		Out:          airbyte,
		StartDate:    cfg.StartDate,
		Lookback:     time.Duration(cfg.LookbackWindowDays) * 24 * time.Hour,
		Follow:       true, // a Flow capture runs until the runtime stops it
		PollInterval: cfg.PollInterval,
	}
	started := time.Now()
	readErr := reader.Read(ctx, jobs)
	if errors.Is(readErr, streams.ErrInterrupted) {
		readErr = nil
	}
	if err := airbyte.Flush(); readErr == nil {
		readErr = err
	}
	pw.Close()
	trErr := <-translated
	if trErr == nil {
		trErr = tr.finish()
	}
	why := "the read ended"
	if cause := context.Cause(ctx); cause != nil {
		why = cause.Error()
	}
	s.log.infof("captured %d documents and %d checkpoints from %d streams in %s; stopped: %s",
		tr.docs, tr.checkpoints, len(jobs), time.Since(started).Round(time.Millisecond), why)

	mu.Lock()
	defer mu.Unlock()
	switch {
	case trErr != nil:
		return trErr
	case failure != nil:
		return failure
	}
	return readErr
}

// watchStdin reads the requests that follow Open. Acknowledgements are
// not requested (Opened.explicitAcknowledgements is false) but tolerated;
// the end of stdin stops the capture, and anything else fails it. Reading
// on keeps the runtime from blocking on a full pipe.
func watchStdin(dec *json.Decoder, stop context.CancelCauseFunc, fail func(error)) {
	for {
		var req Request
		err := dec.Decode(&req)
		switch {
		case err == io.EOF:
			stop(errStdinClosed)
			return
		case err != nil:
			fail(fmt.Errorf("reading stdin: %w", err))
			return
		case req.Acknowledge != nil:
		default:
			fail(errors.New("protocol error: a request other than Acknowledge after Open"))
			return
		}
	}
}

// plan picks the bindings this shard captures: those whose BindingKey falls
// in its range. It returns them by stream name, with the read they need: a
// configured catalog of their streams, incremental, and their saved states,
// taken from the connector state by stateKey.
func plan(open *OpenRequest, shard RangeSpec) (map[string]*capturedBinding, *protocol.ConfiguredCatalog, state.Set, error) {
	saved := map[string]json.RawMessage{}
	if len(open.State) > 0 && string(open.State) != "null" {
		if err := json.Unmarshal(open.State, &saved); err != nil {
			return nil, nil, nil, protocol.ConfigErrorf("the connector state must be an object keyed by binding stateKey: %v", err)
		}
	}
	bindings := map[string]*capturedBinding{}
	cc := &protocol.ConfiguredCatalog{}
	states := state.Set{}
	bound := map[string]bool{}
	for i, b := range open.Capture.Bindings {
		_, st, err := parseResource(b.ResourceConfig)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("binding %d (%s): %w", i, b.Collection.Name, err)
		}
		if bound[st.Name] {
			return nil, nil, nil, protocol.ConfigErrorf("binding %d (%s): stream %q is bound twice", i, b.Collection.Name, st.Name)
		}
		bound[st.Name] = true
		key := b.StateKey
		if key == "" { // derived as the runtime does (assemble::encode_state_key)
			key = st.Name
			if b.Backfill > 0 {
				key += fmt.Sprintf(".v%d", b.Backfill)
			}
		}
		if !shard.Owns(BindingKey(key)) {
			continue
		}
		cb := &capturedBinding{index: i, stream: st, stateKey: key}
		if raw, ok := saved[key]; ok {
			legacy, err := marshal(map[string]json.RawMessage{st.Name: raw})
			if err != nil {
				return nil, nil, nil, err
			}
			set, err := state.Parse(legacy)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("binding %d (%s), state key %q: %w", i, b.Collection.Name, key, err)
			}
			states[st.Name] = set[st.Name]
			if cb.state, err = decodeJSON(raw); err != nil {
				return nil, nil, nil, err
			}
		}
		mode := protocol.SyncModeIncremental
		if !st.Incremental() {
			mode = protocol.SyncModeFullRefresh
		}
		cc.Streams = append(cc.Streams, protocol.ConfiguredStream{Stream: protocol.Stream{Name: st.Name}, SyncMode: mode})
		bindings[st.Name] = cb
	}
	return bindings, cc, states, nil
}
