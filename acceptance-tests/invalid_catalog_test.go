package acceptance

import (
	"testing"

	"source-stripe/internal/fakestripe"
	"source-stripe/protocol"
)

func TestInvalidCatalog(t *testing.T) {
	t.Parallel()
	p, _ := fakePeer(t, fakestripe.DefaultDataset())
	cat := p.discover()
	charges := streamOf(t, cat, "charges")
	lines := streamOf(t, cat, "invoice_line_items")
	for _, tc := range []struct {
		name    string
		catalog []byte
	}{
		{"unknown stream", mustJSON(t, map[string]any{"streams": []any{map[string]any{
			"stream":    protocol.Stream{Name: "no_such_stream", JSONSchema: charges.JSONSchema, SupportedSyncModes: []string{protocol.SyncModeFullRefresh}},
			"sync_mode": protocol.SyncModeFullRefresh, "destination_sync_mode": "overwrite",
		}}})},
		{"incremental on a full-refresh-only stream", mustJSON(t, map[string]any{"streams": []any{map[string]any{
			"stream":    lines,
			"sync_mode": protocol.SyncModeIncremental, "destination_sync_mode": "append", "cursor_field": []string{"created"},
		}}})},
		{"malformed JSON", []byte(`{"streams": [{"stream": {"name": "charges"}, "sync_mode": `)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := p.on(t).read(nil, tc.catalog, nil)
			if res.ExitCode == 0 {
				t.Errorf("exit code 0 for an invalid catalog")
			}
			errs := res.Errors()
			if len(errs) != 1 || errs[0].FailureType != protocol.FailureConfig || errs[0].Message == "" {
				t.Errorf("want one TRACE ERROR with failure_type config_error, got: %s", describeErrors(errs))
			}
			if n := len(res.Records("")); n > 0 {
				t.Errorf("%d records despite an invalid catalog", n)
			}
		})
	}
}
