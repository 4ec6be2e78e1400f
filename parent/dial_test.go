//go:build linux

package parent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/privsep-go/privsep/child"
	"github.com/privsep-go/privsep/internal/hostile"
	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
	"github.com/privsep-go/privsep/policy"
)

// server runs child.Serve in this process on a fresh socket, under rules
// for everyone, and returns the socket's path and a function that stops it
// (and reports what Serve returned). The test's end stops it too.
func server(t *testing.T, cfg child.ServerConfig, rules ...string) (string, func() error) {
	t.Helper()
	if cfg.Policies == nil {
		pol, err := policy.Parse(rules)
		testutil.Must(t, err)
		cfg.Policies = policy.Unscoped(pol)
	}
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	testutil.Must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- child.Serve(ctx, ln, cfg) }()
	var once sync.Once
	var serr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serr = <-done:
			case <-time.After(20 * time.Second):
				serr = errors.New("Serve still running 20s after cancel")
			}
		})
		return serr
	}
	t.Cleanup(func() { stop() })
	return path, stop
}

func dial(t *testing.T, path string) *parent.Opener {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := parent.Dial(ctx, path)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

func TestDial(t *testing.T) {
	root, secret := tree(t)
	path, _ := server(t, child.ServerConfig{}, root+"/")
	o := dial(t, path)
	if o.PID() != os.Getpid() {
		t.Errorf("PID: got %d, want the server's, %d", o.PID(), os.Getpid())
	}
	if got, err := read(t, o, filepath.Join(root, "a.txt")); err != nil || got != "alpha" {
		t.Errorf("read a.txt: got %q, %v", got, err)
	}
	_, err := read(t, o, secret)
	if !errors.Is(err, parent.ErrDenied) {
		t.Errorf("read %s: got %v, want ErrDenied", secret, err)
	}
	if _, err := read(t, o, filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("read missing: got %v, want ErrNotExist", err)
	}
	res, err := o.OpenBatch(context.Background(), []parent.Request{{Path: filepath.Join(root, "a.txt")}, {Path: secret}})
	if err != nil || len(res) != 2 || res[0].Err != nil || !errors.Is(res[1].Err, parent.ErrDenied) {
		t.Errorf("OpenBatch: got %v, %v", res, err)
	}
	for _, r := range res {
		if r.File != nil {
			r.File.Close()
		}
	}
	select {
	case <-o.Done():
		t.Fatal("Done closed while connected")
	default:
	}
	if err := o.Close(); err != nil {
		t.Errorf("Close: got %v, want nil", err)
	}
	if err := o.Close(); err != parent.ErrClosed {
		t.Errorf("second Close: got %v, want ErrClosed", err)
	}
	<-o.Done()
	if err := o.Err(); err != parent.ErrClosed {
		t.Errorf("Err after Close: got %v, want ErrClosed", err)
	}
	if _, err := read(t, o, filepath.Join(root, "a.txt")); !errors.Is(err, parent.ErrClosed) {
		t.Errorf("Open after Close: got %v, want ErrClosed", err)
	}
}

func TestDialRefused(t *testing.T) {
	path, _ := server(t, child.ServerConfig{AllowUIDs: []uint32{uint32(os.Geteuid()) + 1}}, "/etc/hostname")
	o, err := parent.Dial(context.Background(), path)
	if err == nil {
		o.Close()
		t.Fatal("Dial: got nil error, want a refusal")
	}
	var re *parent.ConnRefusedError
	if !errors.As(err, &re) || !errors.Is(err, parent.ErrDenied) || !errors.Is(err, fs.ErrPermission) || !errors.Is(err, syscall.EACCES) {
		t.Errorf("Dial: got %v (%T), want a *ConnRefusedError matching ErrDenied", err, err)
	}
	if !strings.Contains(err.Error(), "the server refused this connection") || !strings.Contains(err.Error(), path) {
		t.Errorf("Dial: got %q, want it to say the server refused the connection to %s", err, path)
	}

	// Too many clients is a refusal too, but not a denial.
	path, _ = server(t, child.ServerConfig{MaxClients: 1}, "/etc/hostname")
	dial(t, path)
	_, err = parent.Dial(context.Background(), path)
	if !errors.As(err, &re) || errors.Is(err, parent.ErrDenied) || !errors.Is(err, syscall.EUSERS) {
		t.Errorf("Dial beyond MaxClients: got %v, want a *ConnRefusedError with EUSERS", err)
	}

	// Nothing there.
	if _, err := parent.Dial(context.Background(), filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Dial to a missing socket: got %v, want ErrNotExist", err)
	}
	// Not a server: a peer that closes at once.
	other := filepath.Join(t.TempDir(), "other")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: other, Net: "unixpacket"})
	testutil.Must(t, err)
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	if _, err := parent.Dial(context.Background(), other); err == nil || !strings.Contains(err.Error(), "closed the connection before it was ready") {
		t.Errorf("Dial to a peer that closes: got %v", err)
	}
}

// TestDialServerGone: when the server ends the connection, every pending
// and later call fails with an *ExitError without a ProcessState.
func TestDialServerGone(t *testing.T) {
	root, _ := tree(t)
	path, stop := server(t, child.ServerConfig{}, root+"/")
	o := dial(t, path)
	if _, err := read(t, o, filepath.Join(root, "a.txt")); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	_, err := o.Open(context.Background(), filepath.Join(root, "a.txt"), os.O_RDONLY, 0)
	var ee *parent.ExitError
	if !errors.As(err, &ee) || ee.ProcessState != nil || ee.Cause == nil || !strings.Contains(err.Error(), "server closed the connection") {
		t.Fatalf("Open after the server left: got %v (%T), want an *ExitError saying the connection ended", err, err)
	}
	select {
	case <-o.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("Done not closed 20s after the connection ended")
	}
	if !errors.As(o.Err(), &ee) {
		t.Errorf("Err: got %v, want the *ExitError", o.Err())
	}
	if err := o.Close(); !errors.As(err, &ee) {
		t.Errorf("Close: got %v, want the *ExitError", err)
	}
}

// TestDialManyClients: 200 clients at once, each opening hundreds of
// files through one server; afterwards this process (server and clients)
// holds exactly the descriptors it held before.
func TestDialManyClients(t *testing.T) {
	root, _ := tree(t)
	file := filepath.Join(root, "a.txt")
	before, beforeList := testutil.FDsSettled(t, 0, -1), testutil.FDList(0)
	const clients = 200
	path, stop := server(t, child.ServerConfig{MaxSessionsPerUID: clients}, root+"/")
	opens := 300
	if hostile.Race {
		opens = 100 // the race detector slows both sides several times over
	}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := make(chan struct{})
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			o, err := parent.Dial(ctx, path)
			if err != nil {
				errs <- err
				return
			}
			defer o.Close()
			<-start
			buf := make([]byte, 16)
			for i := range opens {
				f, err := o.Open(ctx, file, os.O_RDONLY, 0)
				if err != nil {
					errs <- fmt.Errorf("client %d open %d: %w", c, i, err)
					return
				}
				n, err := io.ReadFull(f, buf[:5])
				f.Close()
				if err != nil || string(buf[:n]) != "alpha" {
					errs <- fmt.Errorf("client %d read %d: %q %v", c, i, buf[:n], err)
					return
				}
			}
			if err := o.Close(); err != nil {
				errs <- fmt.Errorf("client %d Close: %w", c, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if after := testutil.FDsSettled(t, 0, before); after != before {
		t.Errorf("descriptors: %d before (%s), %d after (%s)", before, beforeList, after, testutil.FDList(0))
	}
}
