//go:build linux

package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"time"
)

// The Python baseline: the same round trip as the C reference's
// broker_seqpacket with one descriptor, in Python's standard library
// (socket.send_fds and recv_fds, Python 3.9+), run with python3 from PATH
// when there is one. Its output is the C programs' RESULT line, and its CPU
// time, like theirs, covers its forked opener and its warm-up.
const pythonOpener = `
import os, socket, sys, time
n, path = int(sys.argv[1]), sys.argv[2]
p, c = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
pid = os.fork()
if pid == 0:
    p.close()
    while True:
        msg = c.recv(64)
        if not msg:
            os._exit(0)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        socket.send_fds(c, [msg], [fd])
        os.close(fd)
c.close()
def trip():
    p.send(b"open")
    msg, fds, flags, addr = socket.recv_fds(p, 64, 1)
    if len(fds) != 1:
        sys.exit("no descriptor in the reply")
    os.close(fds[0])
for _ in range(n // 10 + 1):
    trip()
t = time.perf_counter_ns()
for _ in range(n):
    trip()
el = time.perf_counter_ns() - t
p.close()
os.waitpid(pid, 0)
print("RESULT python_b1 %.1f" % (el / n))
`

// python is the Python baseline's runner: the interpreter, and its speed
// to size the next run, as cRun does for the C programs.
type python struct {
	prog string
	per  float64 // ns per round trip, from the run before
}

// findPython returns the Python baseline's runner, or nil without a
// python3 that has socket.send_fds.
func findPython(ctx context.Context) *python {
	prog, err := exec.LookPath("python3")
	if err != nil {
		return nil
	}
	py := &python{prog: prog}
	if _, _, err := py.run(ctx, 20, ""); err != nil {
		return nil
	}
	return py
}

// run makes n round trips opening path ("" for the interpreter itself)
// and returns the ns per round trip and the CPU time per round trip.
func (py *python) run(ctx context.Context, n int64, path string) (float64, float64, error) {
	if path == "" {
		path = py.prog
	}
	res, err := RunC(ctx, py.prog, "-c", pythonOpener, strconv.FormatInt(n, 10), path)
	if err != nil {
		return 0, 0, fmt.Errorf("python3: %w", err)
	}
	ns, err := res.NsPerOp("python_b1")
	if err != nil {
		return 0, 0, err
	}
	py.per = ns
	return ns, res.CPUPerTrip(n), nil
}

// pythonSingle is the Python figure of a round.
func (r *runner) pythonSingle(d time.Duration) (float64, string, error) {
	ctx, cancel := context.WithTimeout(r.ctx, 4*d+5*time.Second)
	defer cancel()
	n := iterations(d, r.py.per)
	ns, cpu, err := r.py.run(ctx, n, r.path)
	if err != nil && ctx.Err() != nil && r.ctx.Err() == nil {
		return 0, "", errStalled
	}
	if err != nil {
		return 0, "", err
	}
	r.rep.CPU["python_single"] = append(r.rep.CPU["python_single"], cpu)
	return ns, fmt.Sprintf("%d round trips, %s CPU each", n, FormatNs(cpu, "ns")), nil
}

// rawSingle is the raw Go loop's figure of a round.
func (r *runner) rawSingle(d time.Duration) (float64, string, error) {
	cpu := StartCPU(r.raw.PID())
	ns, n, err := TimeLoop(r.ctx, d, 1, r.raw.OpenClose)
	r.recordCPU("raw_go", cpu, n)
	return ns, fmt.Sprintf("%d round trips, %s CPU each", n, r.lastCPU("raw_go")), err
}
