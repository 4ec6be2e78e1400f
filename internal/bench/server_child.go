//go:build linux

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// Server-mode clients in a child process. Holding both ends of every
// session in one process takes two descriptors a session, which a
// descriptor limit may not allow (a hard RLIMIT_NOFILE of 20,000, and no
// CAP_SYS_RESOURCE to raise it, stops at 9,872 sessions). The clients can
// instead live in a child, this same executable re-executed with
// ServerClientsEnv set, whose main calls RunServerClients.

// ServerClientsEnv, set to "SOCKET FILE N", makes a process started by
// ChildClients the clients of a MeasureServer run in its parent.
const ServerClientsEnv = "PRIVSEP_BENCH_SERVER_CLIENTS"

// IsServerClients reports whether this process was started by
// ChildClients: its main must then call RunServerClients and exit.
func IsServerClients() bool { return os.Getenv(ServerClientsEnv) != "" }

// RunServerClients is the child's side: it connects N sessions to SOCKET,
// each opening FILE, prints "connected", waits for a line on in, has
// every session open the file again, prints "served COUNT FIRST-FAILURE"
// and closes them all.
func RunServerClients(ctx context.Context, in io.Reader, out io.Writer) error {
	v := os.Getenv(ServerClientsEnv)
	f := strings.Fields(v)
	if len(f) != 3 {
		return fmt.Errorf("%s=%q: want SOCKET FILE N", ServerClientsEnv, v)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil || n < 1 {
		return fmt.Errorf("%s=%q: want SOCKET FILE N, N positive", ServerClientsEnv, v)
	}
	if err := RaiseNoFile(uint64(n) + spareFDs); err != nil {
		return err
	}
	cs, err := NewServerClients(f[0], f[1])
	if err != nil {
		return err
	}
	defer cs.Close()
	if err := cs.Connect(ctx, n); err != nil {
		return err
	}
	fmt.Fprintln(out, "connected")
	if _, err := bufio.NewReader(in).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the word to go on: %w", err)
	}
	served, first, err := cs.Again(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "served", served, first)
	return cs.Close()
}

// ChildClients returns a ServerOptions.Clients that runs the clients in a
// child: this executable with args, which must reach RunServerClients.
func ChildClients(args ...string) func(sock, file string) (SessionClients, error) {
	return func(sock, file string) (SessionClients, error) {
		return &childClients{sock: sock, file: file, args: args}, nil
	}
}

// MeasureServerAnywhere is MeasureServer with the clients in this process
// if it may hold their descriptors, and else in a child started with
// ChildClients(args...). A limit that allows neither is a *FDLimitError.
func MeasureServerAnywhere(ctx context.Context, opt ServerOptions, args ...string) (*ServerReport, error) {
	rep, err := MeasureServer(ctx, opt)
	var lim *FDLimitError
	if opt.Clients != nil || !errors.As(err, &lim) {
		return rep, err
	}
	if opt.Log != nil {
		fmt.Fprintf(opt.Log, "privsep bench: server mode: clients in a child process: %v\n", err)
	}
	opt.Clients = ChildClients(args...)
	return MeasureServer(ctx, opt)
}

// childClients are the sessions of a MeasureServer run held by a child
// process.
type childClients struct {
	sock, file string
	args       []string
	cmd        *exec.Cmd
	in         io.WriteCloser
	lines      *bufio.Scanner
	done       bool // the child has said it served
}

// Connect starts the child and waits for it to have connected n sessions.
func (c *childClients) Connect(ctx context.Context, n int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	c.cmd = exec.CommandContext(ctx, self, c.args...)
	c.cmd.Env = append(os.Environ(), ServerClientsEnv+"="+c.sock+" "+c.file+" "+strconv.Itoa(n))
	c.cmd.Stderr = os.Stderr
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("the clients' process: %w", err)
	}
	c.lines = bufio.NewScanner(out)
	_, err = c.expect("connected")
	return err
}

// Again tells the child to have every session open the file again, and
// returns what it says of them.
func (c *childClients) Again(context.Context) (int, string, error) {
	if _, err := fmt.Fprintln(c.in, "go"); err != nil {
		return 0, "", fmt.Errorf("the clients' process: %w", err)
	}
	rest, err := c.expect("served")
	if err != nil {
		return 0, "", err
	}
	count, first, _ := strings.Cut(rest, " ")
	served, err := strconv.Atoi(count)
	if err != nil {
		return 0, "", fmt.Errorf("the clients' process said %q: %w", "served "+rest, err)
	}
	c.done = true
	return served, strings.TrimSpace(first), nil
}

// expect reads the child's output up to a line starting with word, and
// returns the rest of that line; the lines before it (a test binary's own
// output) are kept for the error.
func (c *childClients) expect(word string) (string, error) {
	var seen []string
	for c.lines.Scan() {
		if rest, ok := strings.CutPrefix(c.lines.Text(), word); ok && (rest == "" || rest[0] == ' ') {
			return strings.TrimPrefix(rest, " "), nil
		}
		seen = append(seen, c.lines.Text())
	}
	return "", fmt.Errorf("the clients' process did not say %q: %s", word, strings.Join(seen, "\n"))
}

// Close ends the child: at once if it has not served, which a failed run
// leaves waiting; else it is on its way out and is waited for.
func (c *childClients) Close() error {
	if c.in != nil {
		c.in.Close()
	}
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	if !c.done {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		return nil
	}
	if err := c.cmd.Wait(); err != nil {
		return fmt.Errorf("the clients' process: %w", err)
	}
	return nil
}
