//go:build linux

package main

// End-to-end tests of privsep serve and privsep get: the binary as a
// server, clients as other users, the socket file, shutdown under load,
// and a client in Python written from PROTOCOL.md.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/privsep-go/privsep/internal/testutil"
	"github.com/privsep-go/privsep/parent"
)

// TestServeGet is the acceptance scenario: a server allowing one file, a
// client that gets it, a user who may not connect and is told so.
func TestServeGet(t *testing.T) {
	t.Parallel()
	dir, file := publicFile(t, "hostname", "myhost\n", 0o600)
	sock := filepath.Join(dir, "p.sock")
	s := startServe(t, sock, "--allow", file)

	r := privsep(t, nil, "get", "--socket", sock, file)
	checkCode(t, r, 0)
	checkStdout(t, r, "myhost\n")
	checkStderrLines(t, r)

	r = privsep(t, nil, "get", "--socket", sock, file, filepath.Join(dir, "other"), file)
	checkCode(t, r, 1)
	checkStdout(t, r, "myhost\nmyhost\n")
	checkStderrLines(t, r, "privsep: open "+filepath.Join(dir, "other")+": denied by policy\n")

	// Relative names are made absolute, as cat does.
	r = privsep(t, inDir(dir), "get", "--socket", "p.sock", "hostname")
	checkCode(t, r, 0)
	checkStdout(t, r, "myhost\n")

	if os.Geteuid() == 0 {
		// nobody cannot even reach a socket of mode 0660 owned by root...
		r = privsep(t, as(65534, 65534), "get", "--socket", sock, file)
		checkCode(t, r, 1)
		checkStdout(t, r, "")
		checkStderrLines(t, r, "privsep: dial "+sock+": connect: permission denied (the socket file's mode and group do not let this process connect)\n")
		// ...and where it can, the server refuses it and logs who it was.
		testutil.Must(t, os.Chmod(sock, 0o666))
		r = privsep(t, as(65534, 65534), "get", "--socket", sock, file)
		checkCode(t, r, 1)
		checkStdout(t, r, "")
		checkStderrLines(t, r, "privsep: dial "+sock+": the server refused this connection: this user and group may not connect (permission denied)\n")
		if l := s.log.await("refused connection", "uid=65534", "gid=65534", "pid="); len(l) != 1 {
			t.Errorf("server log: got %q, want one refusal naming uid, gid and pid 65534; log:\n%s", l, s.log)
		}
	}
	code, took := s.stop(t)
	if code != 0 || took > 8*time.Second {
		t.Errorf("after SIGTERM: exit status %d after %v, want 0 promptly", code, took)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after shutdown: got %v, want it removed", err)
	}
	r = privsep(t, nil, "get", "--socket", sock, file)
	checkCode(t, r, 1)
	checkStderrLines(t, r, "privsep: dial "+sock+": connect: no such file or directory\n",
		"privsep get: no socket at "+sock+": is privsep serve running, with --socket "+sock+"?\n")
}

// TestServeEtcHostname is the scenario of the issue, literally, where the
// machine has /etc/hostname.
func TestServeEtcHostname(t *testing.T) {
	t.Parallel()
	want, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Skip("no /etc/hostname")
	}
	sock := filepath.Join(t.TempDir(), "p.sock")
	startServe(t, sock, "--allow", "/etc/hostname")
	r := privsep(t, nil, "get", "--socket", sock, "/etc/hostname")
	checkCode(t, r, 0)
	checkStdout(t, r, string(want))
}

// TestServeUIDs: clients switched to other uids are refused unless listed,
// listed ones are served, and each sees the rules of its sections.
func TestServeUIDs(t *testing.T) {
	t.Parallel()
	testutil.NeedRoot(t, "switching clients to other uids")
	dir := publicDir(t)
	for _, n := range []string{"all", "alice", "staff", "root"} {
		writeMode(t, filepath.Join(dir, n+".txt"), n+"\n", 0o600)
	}
	pol := filepath.Join(dir, "server.policy")
	writeFile(t, pol, strings.Join([]string{
		"r:" + dir + "/all.txt",
		"[uid 65534]",
		"r:" + dir + "/alice.txt",
		"[gid 65533]",
		"r:" + dir + "/staff.txt",
		"[uid 0]",
		"r:" + dir + "/root.txt",
	}, "\n"))
	sock := filepath.Join(dir, "s.sock")
	s := startServe(t, sock, "--policy", pol, "--allow-uid", "65534", "--allow-gid", "65533", "--socket-mode", "0666")

	get := func(uid, gid uint32) result {
		return privsep(t, as(uid, gid), "get", "--socket", sock,
			dir+"/all.txt", dir+"/alice.txt", dir+"/staff.txt", dir+"/root.txt")
	}
	denied := func(n string) string { return "privsep: open " + dir + "/" + n + ".txt: denied by policy\n" }

	// Listed by uid: everyone's rules and its own section's.
	r := get(65534, 65534)
	checkCode(t, r, 1)
	checkStdout(t, r, "all\nalice\n")
	checkStderrLines(t, r, denied("staff"), denied("root"))
	// Listed by primary gid: the gid section's rules.
	r = get(65532, 65533)
	checkCode(t, r, 1)
	checkStdout(t, r, "all\nstaff\n")
	checkStderrLines(t, r, denied("alice"), denied("root"))
	// Both sections.
	r = get(65534, 65533)
	checkCode(t, r, 1)
	checkStdout(t, r, "all\nalice\nstaff\n")
	checkStderrLines(t, r, denied("root"))
	// Not listed: refused, whatever sections the policy has for it. Even
	// root, once there is a list.
	for _, id := range [][2]uint32{{65531, 65531}, {0, 0}} {
		r = get(id[0], id[1])
		checkCode(t, r, 1)
		checkStdout(t, r, "")
		checkStderrLines(t, r, "privsep: dial "+sock+": the server refused this connection: this user and group may not connect (permission denied)\n")
	}
	if l := s.log.await("refused connection", "uid=65531", "gid=65531"); len(l) != 1 {
		t.Errorf("server log: got %q, want one refusal of uid 65531; log:\n%s", l, s.log)
	}
	if l := s.log.await("client connected", "uid=65534", "gid=65533", `"uid 65534"`, `"gid 65533"`); len(l) != 1 {
		t.Errorf("server log: got %q, want one connection of uid 65534 gid 65533 with both sections; log:\n%s", l, s.log)
	}
	if code, _ := s.stop(t); code != 0 {
		t.Errorf("exit status: got %d, want 0", code)
	}
}

func TestServeSocketFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()

	t.Run("mode and group", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(dir, "m.sock")
		gid := os.Getegid()
		if os.Geteuid() == 0 {
			gid = 12345
		}
		startServe(t, sock, "--socket-mode", "0640", "--socket-group", strconv.Itoa(gid))
		var st unix.Stat_t
		testutil.Must(t, unix.Lstat(sock, &st))
		if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o7777 != 0o640 || int(st.Gid) != gid {
			t.Errorf("socket file: got mode %#o gid %d, want a socket of mode 0640 and gid %d", st.Mode, st.Gid, gid)
		}
	})
	t.Run("default mode, whatever the umask", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(dir, "d.sock")
		startServe(t, sock)
		var st unix.Stat_t
		testutil.Must(t, unix.Lstat(sock, &st))
		if st.Mode&0o7777 != 0o660 {
			t.Errorf("socket file: got mode %#o, want 0660", st.Mode&0o7777)
		}
	})
	t.Run("existing file refused", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(dir, "file")
		writeFile(t, path, "keep me\n")
		r := privsep(t, nil, "serve", "--socket", path)
		checkCode(t, r, 1)
		checkStderrLines(t, r, "privsep serve: listen "+path+": exists and is not a socket; refusing to replace it\n")
		if b, err := os.ReadFile(path); err != nil || string(b) != "keep me\n" {
			t.Errorf("the file: got %q, %v; want it untouched", b, err)
		}
	})
	t.Run("stale socket replaced", func(t *testing.T) {
		t.Parallel()
		sock := filepath.Join(dir, "stale.sock")
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0)
		testutil.Must(t, err)
		testutil.Must(t, unix.Bind(fd, &unix.SockaddrUnix{Name: sock}))
		unix.Close(fd) // its file stays, with nobody behind it
		s := startServe(t, sock, "--allow", "/etc/hostname")
		o, err := parent.Dial(context.Background(), sock)
		if err != nil {
			t.Fatalf("Dial the new server: %v", err)
		}
		o.Close()
		// A live one is not replaced.
		r := privsep(t, nil, "serve", "--socket", sock)
		checkCode(t, r, 1)
		checkStderrLines(t, r, "privsep serve: listen "+sock+": a server is listening on this socket already (in use)\n")
		if code, _ := s.stop(t); code != 0 {
			t.Errorf("exit status: got %d, want 0", code)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket after shutdown: got %v, want it removed", err)
		}
	})
}

// TestServeSIGTERMUnderLoad: SIGTERM while clients are busy. Every call
// either succeeds with the right content or fails cleanly; the server
// exits 0 within its shutdown bound and removes its socket.
func TestServeSIGTERMUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	writeFile(t, file, "content\n")
	sock := filepath.Join(dir, "s.sock")
	const clients = 30
	s := startServe(t, sock, "--allow", dir+"/", "--log-level", "warn", "--max-sessions-per-uid", strconv.Itoa(clients))

	var wg, dialed sync.WaitGroup
	var mu sync.Mutex
	ok, failed := 0, 0
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		dialed.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			o, err := parent.Dial(ctx, sock)
			dialed.Done()
			if err != nil {
				errs <- err
				return
			}
			defer o.Close()
			buf := make([]byte, 64)
			for {
				f, err := o.Open(ctx, file, os.O_RDONLY, 0)
				if err != nil {
					var ee *parent.ExitError
					if !errors.As(err, &ee) || ee.ProcessState != nil {
						errs <- err
					}
					mu.Lock()
					failed++
					mu.Unlock()
					return
				}
				n, err := io.ReadFull(f, buf[:8])
				f.Close()
				if err != nil || string(buf[:n]) != "content\n" {
					errs <- errors.New("wrong content: " + string(buf[:n]))
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	// Every client connected and the opens under way.
	dialed.Wait()
	for deadline := time.Now().Add(cmdTimeout); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := ok
		mu.Unlock()
		if n >= clients || time.Now().After(deadline) {
			break
		}
	}
	code, took := s.stop(t)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("client: %v", err)
	}
	if code != 0 || took > 10*time.Second {
		t.Errorf("after SIGTERM: exit status %d after %v, want 0 within the shutdown bound", code, took)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after shutdown: got %v, want it removed", err)
	}
	if ok == 0 || failed != clients {
		t.Errorf("opens: %d succeeded, %d clients saw the end; want some successes and every client to see the end", ok, failed)
	}
	t.Logf("%d opens served, then %d clients saw the server go", ok, failed)
}

func TestServeLogJSON(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "s.sock")
	s := startServe(t, sock, "--log-json", "--allow-uid", strconv.Itoa(os.Geteuid()+1), "--allow", "/etc/hostname")
	r := privsep(t, nil, "get", "--socket", sock, "/etc/hostname")
	checkCode(t, r, 1)
	s.stop(t)
	found := false
	for _, l := range strings.Split(s.log.String(), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		if strings.Contains(m["@message"].(string), "refused connection") {
			found = true
			if m["uid"] != float64(os.Geteuid()) || m["gid"] != float64(os.Getegid()) || m["pid"] == nil || m["@level"] != "warn" {
				t.Errorf("refusal: got %v, want a warning with uid, gid and pid fields", m)
			}
		}
	}
	if !found {
		t.Errorf("no refusal in the log:\n%s", s.log)
	}
}

func TestServeUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string // stderr starts with it
	}{
		{[]string{"serve"}, 2, "privsep serve: no --socket PATH given"},
		{[]string{"serve", "--socket", dir + "/a", "x"}, 2, "privsep serve: unexpected argument \"x\""},
		{[]string{"serve", "--socket", dir + "/a", "--socket-mode", "999"}, 2, "privsep serve: --socket-mode \"999\""},
		{[]string{"serve", "--socket", dir + "/a", "--socket-mode", "01777"}, 2, "privsep serve: --socket-mode"},
		{[]string{"serve", "--socket", dir + "/a", "--socket-group", "no-such-group-xyz"}, 2, "privsep serve: --socket-group: unknown group"},
		{[]string{"serve", "--socket", dir + "/a", "--allow-uid", "no-such-user-xyz"}, 2, "privsep serve: invalid value \"no-such-user-xyz\" for --allow-uid: unknown user"},
		{[]string{"serve", "--socket", dir + "/a", "--max-clients", "0"}, 2, "privsep serve: --max-clients 0"},
		{[]string{"serve", "--socket", dir + "/a", "--policy", dir + "/missing"}, 2, "privsep serve: " + dir + "/missing: cannot open"},
		{[]string{"serve", "--socket", dir + "/a", "--log-level", "loud"}, 2, "privsep serve: unknown log level"},
		{[]string{"serve", "--socket", dir + "/a", "--max-sessions-per-uid", "0"}, 2, "privsep serve: --max-sessions-per-uid 0: want at least 1"},
		{[]string{"serve", "--socket", dir + "/a", "--idle-timeout", "0s"}, 2, "privsep serve: --idle-timeout 0s: want a positive duration"},
		{[]string{"serve", "--socket", dir + "/a", "--idle-timeout", "-1m"}, 2, "privsep serve: --idle-timeout -1m0s: want a positive duration"},
		{[]string{"serve", "--socket", dir + "/a", "--idle-timeout", "soon"}, 2, "privsep serve: invalid value \"soon\" for --idle-timeout"},
		{[]string{"get", "/etc/hostname"}, 2, "privsep get: no --socket PATH given"},
		{[]string{"get", "--socket", dir + "/a"}, 2, "privsep get: no FILE given"},
		{[]string{"get", "--socket", dir + "/a", "/etc/hostname"}, 1, "privsep: dial " + dir + "/a: connect: no such file or directory"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			t.Parallel()
			r := privsep(t, nil, tc.args...)
			checkCode(t, r, tc.code)
			checkStdout(t, r, "")
			if !strings.HasPrefix(r.stderr, tc.want) {
				t.Errorf("stderr: got %q, want it to start with %q", r.stderr, tc.want)
			}
		})
	}
	// A scoped policy error is a usage error with FILE:LINE.
	pol := filepath.Join(dir, "bad.policy")
	writeFile(t, pol, "r:/a\n[uid 0]\nr:/a\n")
	r := privsep(t, nil, "serve", "--socket", dir+"/b", "--policy", pol)
	checkCode(t, r, 2)
	checkStderrLines(t, r, "privsep serve: "+pol+":3: ")
	// Sections are for serve only.
	r = privsep(t, nil, "cat", "--policy", pol, "/a")
	checkCode(t, r, 2)
	checkStderrContains(t, r, "sections are only for a server's policy")

	for _, cmd := range []string{"serve", "get"} {
		checkHelp(t, privsep(t, nil, "help", cmd), "Usage: privsep "+cmd+" --socket PATH")
	}
}

// TestServePythonClient runs examples/fetch.py, a client written from
// PROTOCOL.md alone, against the server.
func TestServePythonClient(t *testing.T) {
	t.Parallel()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	if out, err := exec.Command(py, "-c", "import socket, sys; socket.recv_fds; sys.exit(0)").CombinedOutput(); err != nil {
		t.Skipf("python3 without socket.recv_fds (3.9 or later): %v %s", err, out)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "f.txt")
	writeMode(t, file, "from python\n", 0o600)
	sock := filepath.Join(dir, "s.sock")
	startServe(t, sock, "--allow", file)
	fetch := func(args ...string) result {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, py, append([]string{"examples/fetch.py"}, args...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := result{stdout: stdout.String(), stderr: stderr.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("fetch.py: %v", err)
		}
		return r
	}
	r := fetch(sock, file)
	checkCode(t, r, 0)
	checkStdout(t, r, "from python\n")
	checkStderrLines(t, r)
	r = fetch(sock, file, filepath.Join(dir, "other"))
	checkCode(t, r, 1)
	checkStdout(t, r, "from python\n")
	checkStderrLines(t, r, "fetch.py: open "+filepath.Join(dir, "other")+": denied by policy (Permission denied)\n")

	// Refused: the reason arrives although the hello was sent first.
	sock2 := filepath.Join(dir, "s2.sock")
	startServe(t, sock2, "--allow", file, "--allow-uid", strconv.Itoa(os.Geteuid()+1))
	r = fetch(sock2, file)
	checkCode(t, r, 1)
	checkStdout(t, r, "")
	checkStderrLines(t, r, "fetch.py: the server refused this connection: denied by policy (Permission denied)\n")
}
