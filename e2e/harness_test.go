// Package e2e runs the built connector binary against the in-repo fake
// Stripe and checks what it prints, as a platform would see it.
package e2e

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// kindOf maps each stream to the fake's object kind and parent kind.
var kindOf = testbin.StreamKinds

// wantIDs is every id the fake holds for a stream, sorted.
func wantIDs(fake *fakestripe.Server, stream string) []string {
	k := kindOf[stream]
	var ids []string
	if k.Parent == "" {
		ids = fake.IDs(k.Kind)
	} else {
		for _, p := range fake.IDs(k.Parent) {
			ids = append(ids, fake.ChildIDs(k.Kind, p)...)
		}
	}
	sort.Strings(ids)
	return ids
}

func sortedIDs(records []protocol.Record) []string {
	ids := testbin.IDs(records)
	sort.Strings(ids)
	return ids
}

type env struct {
	t    *testing.T
	fake *fakestripe.Server
	vars []string
}

// newEnv starts a fake Stripe seeded with the default dataset; it is
// stopped when the test ends.
func newEnv(t *testing.T, opts ...fakestripe.Option) *env {
	t.Helper()
	fake := fakestripe.New(opts...)
	t.Cleanup(fake.Close)
	fake.Seed(fakestripe.DefaultDataset())
	return &env{t: t, fake: fake, vars: []string{"STRIPE_API_BASE=" + fake.URL()}}
}

// config writes a config file for the fake's account.
func (e *env) config(fields map[string]any) string {
	return testbin.WriteFile(e.t, "config.json", testbin.Config(fakestripe.DefaultAccountID, fakestripe.DefaultKey, fields))
}

func (e *env) run(args ...string) testbin.Result {
	e.t.Helper()
	return testbin.Run(e.t, 2*time.Minute, e.vars, args...)
}

// catalogFile writes a configured catalog of the named streams.
func catalogFile(t *testing.T, mode string, names ...string) string {
	var cc protocol.ConfiguredCatalog
	for _, n := range names {
		cc.Streams = append(cc.Streams, protocol.ConfiguredStream{Stream: protocol.Stream{Name: n}, SyncMode: mode, DestinationSyncMode: "append"})
	}
	raw, _ := json.Marshal(cc)
	return testbin.WriteFile(t, "catalog.json", raw)
}

func requireExit(t *testing.T, res testbin.Result, code int) {
	t.Helper()
	if res.ExitCode != code {
		t.Fatalf("exit code %d, want %d; stderr:\n%s", res.ExitCode, code, res.Stderr)
	}
}

func requireNoSecret(t *testing.T, res testbin.Result, secret string) {
	t.Helper()
	if slices.ContainsFunc([]string{string(res.Stdout), res.Stderr}, func(s string) bool { return strings.Contains(s, secret) }) {
		t.Fatalf("the secret %q appears in the output", secret)
	}
}

func writeFile(t *testing.T, name string, data []byte) string {
	return testbin.WriteFile(t, name, data)
}
