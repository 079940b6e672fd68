// Package acceptance is our equivalent of Airbyte's Connector Acceptance
// Test suite at "high" strictness: one Go test per rule, each driving the
// built connector binary as a black box, against stripe-mock (a Stripe peer
// we did not write) and against the stateful fake Stripe.
//
// Regenerate the golden files with: go test ./acceptance-tests -update
package acceptance

import (
	"flag"
	"fmt"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func TestMain(m *testing.M) {
	code := m.Run()
	// stripe-mock is shared by the tests that need it; it must not outlive them.
	if err := stopStripeMock(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping stripe-mock: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}
