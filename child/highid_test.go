//go:build linux

package child_test

import (
	"os"
	"testing"
)

// TestCreateOwnerAbove2p31 gives created files an owner whose ids do not fit
// a 32-bit int. Linux ids go up to 2^32-2; policy holds them as int64 and the
// opener passes them to fchown as the 32 bits the kernel reads. Under
// GOARCH=386 (which .ci/run runs) this is the case that used to overflow:
// before, policy did not even build for 32-bit, and an int conversion that
// kept the value would have failed fchown or chosen another owner.
func TestCreateOwnerAbove2p31(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files away")
	}
	const uid, gid uint32 = 4000000000, 4294967294
	forBoth(t, func(t *testing.T, fallback bool) {
		root := t.TempDir()
		o := startPolicy(t, fallback, quoteRule("rwc", root+"/", "owner=4000000000:4294967294"))
		path := root + "/new"
		mustOpenVia(t, o, path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if st := statOf(t, path); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s: got owner %d:%d, want %d:%d", path, st.Uid, st.Gid, uid, gid)
		}
	})
}
