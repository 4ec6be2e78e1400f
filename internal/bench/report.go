//go:build linux

package bench

// Report is the result of Run; the JSON keys are the interface of privsep
// bench --json. Times are medians over the rounds, in nanoseconds.
type Report struct {
	DirectNsPerOp       float64 `json:"direct_ns_per_op"`    // unix.Open+Close: the floor
	DirectOsNsPerOp     float64 `json:"direct_os_ns_per_op"` // os.Open+Close, which returns an *os.File as the opener does
	SingleNsPerOp       float64 `json:"single_ns_per_op"`
	Concurrent16NsPerOp float64 `json:"concurrent16_ns_per_op"`
	Batch64NsPerFD      float64 `json:"batch64_ns_per_fd"`
	StartNs             float64 `json:"start_ns"` // Start and the first Open
	BareStartNs         float64 `json:"bare_start_ns"`
	StartCloseNs        float64 `json:"start_close_ns"` // the same, the opener's Close included
	ChildRSSBytes       int64   `json:"child_rss_bytes"`
	BareStartRSSBytes   int64   `json:"bare_start_rss_bytes"` // RSS of a bare re-exec about to exit: the floor under ChildRSSBytes
	// ChildMemory breaks the idle opener's RSS down: its own anonymous
	// memory, and the pages of the executable and libraries that it maps
	// (of this same binary, the parent maps them too). Nil where
	// smaps_rollup cannot be read.
	ChildMemory   *Memory `json:"child_memory,omitempty"`
	AllocsPerOpen float64 `json:"allocs_per_open"`

	// CPU time of both processes (this one and the opener) per open,
	// medians over the rounds: less sensitive than wall time to a busy
	// machine, where a round trip mostly waits for a CPU.
	SingleCPUNsPerOp       float64 `json:"single_cpu_ns_per_op"`
	Concurrent16CPUNsPerOp float64 `json:"concurrent16_cpu_ns_per_op"`
	Batch64CPUNsPerFD      float64 `json:"batch64_cpu_ns_per_fd"`

	SingleOverDirect       float64 `json:"single_over_direct"`
	Concurrent16OverDirect float64 `json:"concurrent16_over_direct"`
	Batch64OverDirect      float64 `json:"batch64_per_fd_over_direct"`
	Batch64OverDirectOs    float64 `json:"batch64_per_fd_over_direct_os"`
	StartOverBare          float64 `json:"start_over_bare_start"`
	StartCloseOverBare     float64 `json:"start_close_over_bare_start"`

	// The C reference, with Options.RefDir only.
	CDirectNsPerOp      float64 `json:"c_direct_ns_per_op,omitempty"`
	CSingleNsPerOp      float64 `json:"c_single_ns_per_op,omitempty"`
	CBatch64NsPerFD     float64 `json:"c_batch64_ns_per_fd,omitempty"`
	CChildRSSBytes      int64   `json:"c_child_rss_bytes,omitempty"`
	CSingleCPUNsPerOp   float64 `json:"c_single_cpu_ns_per_op,omitempty"`
	CBatch64CPUNsPerFD  float64 `json:"c_batch64_cpu_ns_per_fd,omitempty"`
	SingleCPUOverC      float64 `json:"single_cpu_over_c_single_cpu,omitempty"`
	Concurrent16CPUOvC  float64 `json:"concurrent16_cpu_over_c_single_cpu,omitempty"`
	Batch64CPUOverC     float64 `json:"batch64_cpu_over_c_batch64_cpu,omitempty"`
	SingleOverCSingle   float64 `json:"single_over_c_single,omitempty"`
	Concurrent16RateOvC float64 `json:"concurrent16_rate_over_c_single_rate,omitempty"`
	Batch64OverCBatch64 float64 `json:"batch64_per_fd_over_c_batch64_per_fd,omitempty"`
	CSingleOverCDirect  float64 `json:"c_single_over_c_direct,omitempty"`

	// The Go and Python baselines, with Options.Baselines only: the C
	// opener's round trip as a raw Go loop (blocking x/sys Recvmsg, no
	// checks) and in Python's standard library; the ratios to the C
	// opener are with Options.RefDir too.
	RawGoNsPerOp      float64 `json:"raw_go_ns_per_op,omitempty"`
	RawGoCPUNsPerOp   float64 `json:"raw_go_cpu_ns_per_op,omitempty"`
	PythonNsPerOp     float64 `json:"python_ns_per_op,omitempty"`
	PythonCPUNsPerOp  float64 `json:"python_cpu_ns_per_op,omitempty"`
	SingleOverRawGo   float64 `json:"single_over_raw_go,omitempty"`
	RawGoOverCSingle  float64 `json:"raw_go_over_c_single,omitempty"`
	PythonOverCSingle float64 `json:"python_over_c_single,omitempty"`
	RawGoCPUOverC     float64 `json:"raw_go_cpu_over_c_single_cpu,omitempty"`
	PythonCPUOverC    float64 `json:"python_cpu_over_c_single_cpu,omitempty"`

	// System calls and context switches of both processes (this one and
	// the opener, every thread), per operation or per fd, counted with the
	// kernel's perf events over Options.Count operations after the timed
	// rounds; the C reference's with Options.RefDir. When nothing could
	// be counted they are nil and CountNote says why.
	SingleCounts       *PerOp `json:"single_counts,omitempty"`
	Batch64Counts      *PerOp `json:"batch64_counts_per_fd,omitempty"`
	Concurrent16Counts *PerOp `json:"concurrent16_counts,omitempty"`
	CSingleCounts      *PerOp `json:"c_single_counts,omitempty"`
	CBatch64Counts     *PerOp `json:"c_batch64_counts_per_fd,omitempty"`
	CountNote          string `json:"count_note,omitempty"`

	// Server mode, with Options.Sessions only; ServerNote says why it was
	// not measured when the descriptor limit allowed it nowhere.
	Server     *ServerReport `json:"server,omitempty"`
	ServerNote string        `json:"server_note,omitempty"`

	// How and where the figures were taken.
	Rounds     int        `json:"rounds"`
	DurationNs int64      `json:"duration_ns"` // per figure, all rounds together
	ElapsedNs  int64      `json:"elapsed_ns"`  // the whole run
	NumCPU     int        `json:"num_cpu"`     // CPUs this process may run on
	GOMAXPROCS int        `json:"gomaxprocs"`
	LoadAvg    [3]float64 `json:"loadavg"` // at the start of the run
	GoVersion  string     `json:"go_version"`
	Openat2    bool       `json:"openat2"`

	// Spread holds each figure's value in each round, by figure key
	// ("single", "c_batch64", ...), for the table's ranges; CPU the CPU
	// time per unit of the figures that have one.
	Spread map[string][]float64 `json:"-"`
	CPU    map[string][]float64 `json:"-"`
}

// median is the median of figure key over the rounds.
func (r *Report) median(key string) float64 { return Median(r.Spread[key]) }

// summarize fills the medians and ratios from Spread and CPU.
func (r *Report) summarize() {
	med := r.median
	r.DirectNsPerOp = med("direct")
	r.DirectOsNsPerOp = med("direct_os")
	r.SingleNsPerOp = med("single")
	r.Concurrent16NsPerOp = med("concurrent16")
	r.Batch64NsPerFD = med("batch64")
	r.StartNs = med("start")
	r.BareStartNs = med("bare_start")
	r.StartCloseNs = med("start_close")
	r.SingleCPUNsPerOp = Median(r.CPU["single"])
	r.Concurrent16CPUNsPerOp = Median(r.CPU["concurrent16"])
	r.Batch64CPUNsPerFD = Median(r.CPU["batch64"])
	r.SingleOverDirect = Ratio(r.SingleNsPerOp, r.DirectNsPerOp)
	r.Concurrent16OverDirect = Ratio(r.Concurrent16NsPerOp, r.DirectNsPerOp)
	r.Batch64OverDirect = Ratio(r.Batch64NsPerFD, r.DirectNsPerOp)
	r.Batch64OverDirectOs = Ratio(r.Batch64NsPerFD, r.DirectOsNsPerOp)
	r.StartOverBare = Ratio(r.StartNs, r.BareStartNs)
	r.StartCloseOverBare = Ratio(r.StartCloseNs, r.BareStartNs)
}

// summarizeC fills the C reference's medians and ratios.
func (r *Report) summarizeC(childRSS int64) {
	med := r.median
	r.CDirectNsPerOp = med("c_direct")
	r.CSingleNsPerOp = med("c_single")
	r.CBatch64NsPerFD = med("c_batch64")
	r.CChildRSSBytes = childRSS
	r.CSingleCPUNsPerOp = Median(r.CPU["c_single"])
	r.CBatch64CPUNsPerFD = Median(r.CPU["c_batch64"])
	r.SingleCPUOverC = Ratio(r.SingleCPUNsPerOp, r.CSingleCPUNsPerOp)
	r.Concurrent16CPUOvC = Ratio(r.Concurrent16CPUNsPerOp, r.CSingleCPUNsPerOp)
	r.Batch64CPUOverC = Ratio(r.Batch64CPUNsPerFD, r.CBatch64CPUNsPerFD)
	r.SingleOverCSingle = Ratio(r.SingleNsPerOp, r.CSingleNsPerOp)
	r.Concurrent16RateOvC = Ratio(r.CSingleNsPerOp, r.Concurrent16NsPerOp)
	r.Batch64OverCBatch64 = Ratio(r.Batch64NsPerFD, r.CBatch64NsPerFD)
	r.CSingleOverCDirect = Ratio(r.CSingleNsPerOp, r.CDirectNsPerOp)
}

// summarizeBaselines fills the Go and Python baselines' medians and
// ratios (to the C opener: zero without it).
func (r *Report) summarizeBaselines() {
	r.RawGoNsPerOp = r.median("raw_go")
	r.RawGoCPUNsPerOp = Median(r.CPU["raw_go"])
	r.PythonNsPerOp = r.median("python_single")
	r.PythonCPUNsPerOp = Median(r.CPU["python_single"])
	r.SingleOverRawGo = Ratio(r.SingleNsPerOp, r.RawGoNsPerOp)
	r.RawGoOverCSingle = Ratio(r.RawGoNsPerOp, r.CSingleNsPerOp)
	r.PythonOverCSingle = Ratio(r.PythonNsPerOp, r.CSingleNsPerOp)
	r.RawGoCPUOverC = Ratio(r.RawGoCPUNsPerOp, r.CSingleCPUNsPerOp)
	r.PythonCPUOverC = Ratio(r.PythonCPUNsPerOp, r.CSingleCPUNsPerOp)
}
