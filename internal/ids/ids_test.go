package ids_test

import (
	"os/user"
	"strconv"
	"strings"
	"testing"

	"github.com/privsep-go/privsep/internal/ids"
)

func TestIDs(t *testing.T) {
	root, err := user.LookupId("0")
	if err != nil {
		t.Skipf("no uid 0: %v", err)
	}
	rootGroup, err := user.LookupGroupId("0")
	if err != nil {
		t.Skipf("no gid 0: %v", err)
	}
	// A uid with no passwd entry is still a uid; its group is itself.
	const unknown = 4242424
	if _, err := user.LookupId(strconv.Itoa(unknown)); err == nil {
		t.Skipf("uid %d unexpectedly has a passwd entry", unknown)
	}
	if u, err := ids.User(strconv.Itoa(unknown)); err != nil || u.Uid != strconv.Itoa(unknown) || u.Gid != u.Uid {
		t.Errorf("User(%d) = %+v, %v; want uid and gid %d", unknown, u, err, unknown)
	}
	for _, tc := range []struct {
		s    string
		user bool
		want uint32
	}{
		{root.Username, true, 0},
		{"0", true, 0},
		{"000", true, 0},
		{"4294967294", true, ids.MaxID},
		{rootGroup.Name, false, 0},
		{"4242", false, 4242},
	} {
		f, name := ids.GID, "GID"
		if tc.user {
			f, name = ids.UID, "UID"
		}
		if got, err := f(tc.s); err != nil || got != tc.want {
			t.Errorf("%s(%q) = %d, %v; want %d", name, tc.s, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		s    string
		user bool
		want string
	}{
		{"", true, "empty user"},
		{"", false, "empty group"},
		{"no-such-user-privsep", true, `unknown user "no-such-user-privsep"`},
		{"no-such-group-privsep", false, `unknown group "no-such-group-privsep"`},
		{"4294967295", true, `user id "4294967295" is out of range`},
		{"99999999999999999999", false, `group id "99999999999999999999" is out of range`},
		{"-1", true, `unknown user "-1"`},
	} {
		f, name := ids.GID, "GID"
		if tc.user {
			f, name = ids.UID, "UID"
		}
		if got, err := f(tc.s); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s(%q) = %d, %v; want an error containing %q", name, tc.s, got, err, tc.want)
		}
	}
}
