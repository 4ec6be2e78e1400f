package parent_test

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/parent"
)

// TestLandlockPlan: on every ABI version, what a ruleset handles, what is
// reported not applied with BestEffort, and that without BestEffort a
// kernel lacking a restriction asked for is an error naming it. Where
// privsep has no filter for MPTCP sockets (linux/386), restricting TCP
// also lacks IPPROTO_MPTCP.
func TestLandlockPlan(t *testing.T) {
	t.Parallel()
	const (
		fsV1 = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE |
			unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR |
			unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
			unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR |
			unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK |
			unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			unix.LANDLOCK_ACCESS_FS_MAKE_SYM
		fsV2   = fsV1 | unix.LANDLOCK_ACCESS_FS_REFER
		fsV3   = fsV2 | unix.LANDLOCK_ACCESS_FS_TRUNCATE
		fsV5   = fsV3 | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
		tcp    = unix.LANDLOCK_ACCESS_NET_BIND_TCP | unix.LANDLOCK_ACCESS_NET_CONNECT_TCP
		scopes = unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | unix.LANDLOCK_SCOPE_SIGNAL
	)
	all := []string{"LANDLOCK_ACCESS_FS_REFER", "LANDLOCK_ACCESS_FS_TRUNCATE",
		"LANDLOCK_ACCESS_NET_BIND_TCP", "LANDLOCK_ACCESS_NET_CONNECT_TCP", "LANDLOCK_ACCESS_FS_IOCTL_DEV",
		"LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET", "LANDLOCK_SCOPE_SIGNAL"}
	for _, tc := range []struct {
		abi             int
		fs, net, scoped uint64
		missing         []string
	}{
		{1, fsV1, 0, 0, all},
		{2, fsV2, 0, 0, all[1:]},
		{3, fsV3, 0, 0, all[2:]},
		{4, fsV3, tcp, 0, all[4:]},
		{5, fsV5, tcp, 0, all[5:]},
		{6, fsV5, tcp, scopes, nil},
		{7, fsV5, tcp, scopes, nil},
		{8, fsV5, tcp, scopes, nil},
	} {
		missing := tc.missing
		if tc.net != 0 && mptcpUnfiltered() {
			// TCP is restricted, but MPTCP sockets cannot be refused here.
			missing = append(slices.Clone(missing), "IPPROTO_MPTCP")
		}
		fs, net, scoped, notApplied, err := parent.PlanLandlock(tc.abi, parent.LandlockConfig{BestEffort: true})
		if err != nil || fs != tc.fs || net != tc.net || scoped != tc.scoped || !slices.Equal(notApplied, missing) {
			t.Errorf("ABI %d, best effort: handles fs %#x net %#x scoped %#x, not applied %q, %v; want %#x %#x %#x, %q, nil",
				tc.abi, fs, net, scoped, notApplied, err, tc.fs, tc.net, tc.scoped, missing)
		}
		_, _, _, _, err = parent.PlanLandlock(tc.abi, parent.LandlockConfig{})
		var ue *parent.LandlockUnsupportedError
		if missing == nil {
			if err != nil {
				t.Errorf("ABI %d, strict: %v, want nil", tc.abi, err)
			}
		} else if !errors.As(err, &ue) || ue.ABI != tc.abi || !slices.Equal(ue.Missing, missing) {
			t.Errorf("ABI %d, strict: %v, want a *LandlockUnsupportedError naming %q", tc.abi, err, missing)
		}
	}

	// What is not asked for is neither handled nor missing: a kernel of
	// ABI 5 does all that is asked when TCP and scopes are left open.
	open := parent.LandlockConfig{AnyTCP: true, AllowAbstractUnix: true, AllowSignals: true}
	if fs, net, scoped, notApplied, err := parent.PlanLandlock(5, open); err != nil || fs != fsV5 || net != 0 || scoped != 0 || notApplied != nil {
		t.Errorf("ABI 5, TCP and scopes left open: fs %#x net %#x scoped %#x, %q, %v; want %#x, nothing else, nil", fs, net, scoped, notApplied, err, fsV5)
	}
	if _, _, scoped, _, err := parent.PlanLandlock(6, parent.LandlockConfig{AllowSignals: true, AnyTCP: true}); err != nil || scoped != unix.LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET {
		t.Errorf("ABI 6, AllowSignals: scoped %#x, %v; want the abstract unix scope only", scoped, err)
	}
	if _, _, scoped, _, err := parent.PlanLandlock(6, parent.LandlockConfig{AllowAbstractUnix: true, AnyTCP: true}); err != nil || scoped != unix.LANDLOCK_SCOPE_SIGNAL {
		t.Errorf("ABI 6, AllowAbstractUnix: scoped %#x, %v; want the signal scope only", scoped, err)
	}
	// Contradictions are errors whatever the kernel.
	if _, _, _, _, err := parent.PlanLandlock(7, parent.LandlockConfig{AnyTCP: true, BindTCP: []uint16{80}}); err == nil {
		t.Errorf("AnyTCP with BindTCP: nil, want an error")
	}
	// Without Landlock every restriction is missing.
	if _, _, _, notApplied, err := parent.PlanLandlock(0, parent.LandlockConfig{BestEffort: true}); err != nil || len(notApplied) != 20 {
		t.Errorf("ABI 0, best effort: %d not applied (%q), %v; want all 20", len(notApplied), notApplied, err)
	}
}
