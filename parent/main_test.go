//go:build linux

package parent_test

import (
	"os"
	"testing"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/testutil"
)

// exitAtOnceEnv makes the test binary exit as soon as it starts: the
// benchmarks use it to time a bare re-exec of the same binary.
const exitAtOnceEnv = "PRIVSEP_TEST_EXIT_AT_ONCE"

func TestMain(m *testing.M) {
	if os.Getenv(exitAtOnceEnv) == "1" {
		os.Exit(0)
	}
	child.Init() // the test binary is also the opener the tests start
	testutil.LoadLocalZone()
	os.Exit(m.Run())
}
