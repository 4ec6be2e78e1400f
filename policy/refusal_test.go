package policy_test

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/privsep-go/privsep/policy"
)

// TestRefusalIsNotShared performs what a shared sentinel allowed: one
// caller rewrites the refusal it was given, and the next caller must not
// see it.
func TestRefusalIsNotShared(t *testing.T) {
	p, err := policy.Parse([]string{"/srv/"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Check("/etc/passwd", 0, 0)
	var r *policy.Refusal
	if !errors.As(err, &r) {
		t.Fatalf("Check: got %T %v, want a policy.Refusal", err, err)
	}
	r.Why, r.Errno, r.Kind = "rewritten", syscall.EPERM, policy.BadRequest
	_, err = p.Check("/etc/passwd", 0, 0)
	var got policy.Refusal
	if !errors.As(err, &got) || got.Why == "rewritten" || got.Errno != syscall.EACCES || got.Kind != policy.Denied {
		t.Errorf("after a caller changed its refusal, the next is %+v, want the policy's own", got)
	}
	var v policy.Refusal
	if !errors.As(fmt.Errorf("wrapped: %w", err), &v) || v.Errno != syscall.EACCES {
		t.Errorf("errors.As into a Refusal value through a wrap: got %+v", v)
	}
}

// TestRefusalAsForeignError: errors.As on an error that is not a refusal
// reports false and leaves the target alone (no panic, as the type
// assertions it replaced had).
func TestRefusalAsForeignError(t *testing.T) {
	var r *policy.Refusal
	var v policy.Refusal
	if errors.As(errors.New("other"), &r) || r != nil || errors.As(syscall.EIO, &v) || v != (policy.Refusal{}) {
		t.Errorf("errors.As matched a foreign error: %v %+v", r, v)
	}
}

// TestRefusingAllocatesNothing: every kind of refusal Check, CheckListen
// and CheckPath return is a constant.
func TestRefusingAllocatesNothing(t *testing.T) {
	p, err := policy.ParseLines([]string{"/srv/", "listen tcp:127.0.0.1:8080"})
	if err != nil {
		t.Fatal(err)
	}
	long := "/" + strings.Repeat("a", policy.MaxPath)
	n := testing.AllocsPerRun(100, func() {
		for _, q := range []string{"/etc/passwd", "rel", "", long, "/srv/a\x00", "/srv/../etc"} {
			if _, err := p.Check(q, 0, 0); err == nil {
				t.Fatalf("Check(%q) allowed", q)
			}
		}
		if _, err := p.Check("/srv/f", syscall.O_WRONLY, 0); err == nil {
			t.Fatal("write allowed")
		}
		if _, err := p.CheckListen("tcp", "127.0.0.1:9"); err == nil {
			t.Fatal("listen allowed")
		}
	})
	if n != 0 {
		t.Errorf("got %v allocations refusing, want 0", n)
	}
}

// TestTooLongNamesMaxPath: the constant message keeps the limit's value.
func TestTooLongNamesMaxPath(t *testing.T) {
	err := policy.CheckPath("/" + strings.Repeat("a", policy.MaxPath))
	if !strings.Contains(err.Error(), strconv.Itoa(policy.MaxPath)) {
		t.Errorf("got %v, want it to name %d", err, policy.MaxPath)
	}
}
