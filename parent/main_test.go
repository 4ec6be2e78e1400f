package parent_test

import (
	"os"
	"testing"

	"github.com/privsep-go/privsep/child"
)

func TestMain(m *testing.M) {
	child.Init()
	os.Exit(m.Run())
}
