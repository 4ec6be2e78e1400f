//go:build linux

package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SelfCPU returns the CPU time (user + system) this process has used, all
// its threads included, or 0 if getrusage fails.
func SelfCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TaskCPU returns the CPU time used by the live threads of process pid,
// the sum of the first fields of /proc/PID/task/TID/schedstat
// (nanoseconds on CPU). Threads that have exited are missed; an opener's
// threads live as long as it does, so readings taken while it runs can be
// subtracted.
func TaskCPU(pid int) (time.Duration, error) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, e := range ents {
		name := dir + "/" + e.Name() + "/schedstat"
		data, err := os.ReadFile(name)
		if err != nil {
			continue // the thread just exited
		}
		f := strings.Fields(string(data))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s: empty", name)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// CPUMeter measures the CPU time that this process and one other (an
// opener) use from StartCPU on: on a busy machine, where wall time mostly
// measures the wait for a CPU, it says what a request costs.
type CPUMeter struct {
	pid         int
	self, other time.Duration
	err         error // reading the other process at the start
}

// StartCPU starts measuring this process and process pid.
func StartCPU(pid int) CPUMeter {
	m := CPUMeter{pid: pid, self: SelfCPU()}
	m.other, m.err = TaskCPU(pid)
	return m
}

// Used returns the CPU time used since StartCPU by this process, and by
// both processes together. The error says the other's could not be read,
// at the start or now.
func (m CPUMeter) Used() (self, both time.Duration, err error) {
	self = SelfCPU() - m.self
	other, err := TaskCPU(m.pid)
	if m.err != nil {
		err = m.err
	}
	if err != nil {
		return self, 0, fmt.Errorf("CPU time of process %d: %w", m.pid, err)
	}
	return self, self + other - m.other, nil
}

// VmRSS returns the resident set size of process pid in bytes, from
// /proc/PID/status.
func VmRSS(pid int) (int64, error) {
	name := "/proc/" + strconv.Itoa(pid) + "/status"
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(data) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest)) // "4520 kB"
			if len(f) == 2 && f[1] == "kB" {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10, nil
				}
			}
			break
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS line in kB", name)
}

// Memory is what /proc/PID/smaps_rollup says of a process's resident
// pages, in bytes.
type Memory struct {
	RSS       int64 `json:"rss_bytes"`
	PSS       int64 `json:"pss_bytes"`       // each shared page divided among the processes mapping it
	Anonymous int64 `json:"anonymous_bytes"` // the process's own: heap, stacks, runtime data
	File      int64 `json:"file_bytes"`      // pages of the executable and libraries, in the page cache once for all
}

// SmapsRollup reads the Memory of process pid.
func SmapsRollup(pid int) (Memory, error) {
	name := "/proc/" + strconv.Itoa(pid) + "/smaps_rollup"
	data, err := os.ReadFile(name)
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	fields := map[string]*int64{"Rss:": &m.RSS, "Pss:": &m.PSS, "Anonymous:": &m.Anonymous}
	for line := range bytes.Lines(data) {
		f := strings.Fields(string(line))
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		if p, ok := fields[f[0]]; ok {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return Memory{}, fmt.Errorf("%s: %q: %w", name, strings.TrimSpace(string(line)), err)
			}
			*p = kb << 10
		}
	}
	if m.RSS <= 0 {
		return Memory{}, fmt.Errorf("%s: no Rss line in kB", name)
	}
	m.File = m.RSS - m.Anonymous
	return m, nil
}

// LoadAvg returns the load averages of /proc/loadavg, or zeros.
func LoadAvg() [3]float64 {
	var l [3]float64
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return l
	}
	f := strings.Fields(string(data))
	for i := 0; i < 3 && i < len(f); i++ {
		l[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return l
}
