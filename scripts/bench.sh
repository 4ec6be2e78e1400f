#!/usr/bin/env bash
# Run privsep's benchmarks once, side by side with the C reference programs,
# and print the ratios between them. Every figure comes from the same run:
# the machines are shared and noisy, so only ratios mean much. The packages
# are ./parent/ (the opener, its floors, the C reference, the opener's own
# allocations) and ./policy/ (the policy check).
#
# Usage: scripts/bench.sh [-benchtime D] [-o FILE] [other go test flags...]
#   -benchtime D   passed to go test (default 1s; 100x for a quick check,
#                  as CI does: it shows nothing rotted, not how fast it is)
#   -o FILE        also keep the raw go test output in FILE
#   anything else  passed to go test as is (e.g. -cpu 1, -bench 'Open')
#
# Needs bash, awk and go; gcc and ../shared/bench (beside the module root,
# or $PRIVSEP_BENCH_REF_DIR) for the C reference, which is skipped without
# them. Pin everything to one CPU with: taskset -c 0 scripts/bench.sh
set -euo pipefail

usage() { sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; }

benchtime=1s
out=
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	-benchtime) benchtime=${2:?-benchtime needs a value}; shift 2 ;;
	-benchtime=*) benchtime=${1#*=}; shift ;;
	-o) out=${2:?-o needs a file}; shift 2 ;;
	-h | -help | --help) usage; exit 0 ;;
	*) extra+=("$1"); shift ;;
	esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ -z "${PRIVSEP_BENCH_REF_DIR:-}" ] && [ -d "$root/../shared/bench" ]; then
	PRIVSEP_BENCH_REF_DIR=$(cd "$root/../shared/bench" && pwd)
	export PRIVSEP_BENCH_REF_DIR
fi

raw=$(mktemp "${TMPDIR:-/tmp}/privsep-bench.XXXXXX")
trap 'rm -f "$raw"' EXIT

pkgs=(./parent/ ./policy/)
echo "# go test -run '^\$' -bench . -benchtime $benchtime -count 1 -benchmem${extra[*]+ ${extra[*]}} ${pkgs[*]}"
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -r) nproc=$(nproc) GOMAXPROCS=${GOMAXPROCS:-default} affinity=$(taskset -pc $$ 2>/dev/null | sed 's/.*: //' || echo '?') load:$(cut -d' ' -f1-3 /proc/loadavg)"
set +e
go test -run '^$' -bench . -benchtime "$benchtime" -count 1 -benchmem ${extra[@]+"${extra[@]}"} "${pkgs[@]}" 2>&1 | tee "$raw"
status=${PIPESTATUS[0]}
set -e
if [ -n "$out" ]; then
	cp "$raw" "$out"
fi
if [ "$status" -ne 0 ]; then
	echo "bench.sh: go test failed (status $status)" >&2
	exit "$status"
fi

echo
awk '
# Benchmark lines: NAME[-P] ITERATIONS (VALUE UNIT)...
/^Benchmark/ && NF >= 4 {
	name = $1
	sub(/^Benchmark/, "", name)
	sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i += 2)
		v[name, $(i + 1)] = $i
}
function have(n, u) { return ((n, u) in v) }
function get(n, u) { return v[n, u] + 0 }
function ratio(a, b) { return (b > 0) ? sprintf("%.2fx", a / b) : "n/a" }
# r(numerator name, unit, denominator name, unit)
function r(n1, u1, n2, u2) {
	if (!have(n1, u1) || !have(n2, u2)) return "n/a"
	return ratio(get(n1, u1), get(n2, u2))
}
function us(n, u) { return have(n, u) ? sprintf("%.1f us", get(n, u) / 1000) : "n/a" }
function ms(n, u) { return have(n, u) ? sprintf("%.2f ms", get(n, u) / 1e6) : "n/a" }
function mib(n, u) { return have(n, u) ? sprintf("%.1f MiB", get(n, u) / 1048576) : "n/a" }
function row(what, val, note) { printf "%-48s %10s   %s\n", what, val, note }
END {
	print "Figures (ns/op unless said)"
	row("direct unix.Open+Close", us("DirectOpenClose", "ns/op"), "os.Open+Close " us("DirectOsOpen", "ns/op") ", C direct " us("CReference/direct", "c-ns/op") ", C getppid " us("CReference/direct", "c-getppid-ns"))
	row("single Open+Close", us("OpenSingle", "ns/op"), "C b1 round trip " us("CReference/b1", "c-ns/op"))
	row("batch of 64, per fd", us("OpenBatch64", "ns/fd"), "C b64 per fd " us("CReference/b64", "c-ns/fd"))
	row("batch of 253 (one full message), per fd", us("OpenBatch253", "ns/fd"), "")
	row("batch of 1000 (four messages), per fd", us("OpenBatch1000", "ns/fd"), "")
	row("16 callers, aggregate per op", us("OpenConcurrent16", "ns/op"), "")
	row("CPU per single open (parent+child)", us("OpenSingle", "cpu-ns/op"), "parent alone " us("OpenSingle", "parent-cpu-ns/op") ", C b1 " us("CReference/b1", "c-cpu-ns/op"))
	row("CPU per op, 16 callers", us("OpenConcurrent16", "cpu-ns/op"), "parent alone " us("OpenConcurrent16", "parent-cpu-ns/op"))
	row("CPU per fd, batch of 64", us("OpenBatch64", "cpu-ns/fd"), "C b64 " us("CReference/b64", "c-cpu-ns/fd"))
	row("Start to first fd (median)", ms("StartToFirstFD", "first-fd-median-ns"), "bare re-exec " ms("BareReexec", "median-ns") "; Close included " ms("StartToFirstFD", "median-ns") "; means " ms("StartToFirstFD", "ns/op") " and " ms("BareReexec", "ns/op"))
	print ""
	print "Ratios (same run)"
	row("single open / direct open+close", r("OpenSingle", "ns/op", "DirectOpenClose", "ns/op"), "C b1 / C direct: " r("CReference/b1", "c-ns/op", "CReference/direct", "c-ns/op"))
	row("single open / C b1 round trip", r("OpenSingle", "ns/op", "CReference/b1", "c-ns/op"), "")
	row("16-caller rate / C sequential rate", r("CReference/b1", "c-ns/op", "OpenConcurrent16", "ns/op"), "(C b1 ns/op / concurrent16 ns/op; >1 is faster than C)")
	row("batch-64 per fd / direct open+close", r("OpenBatch64", "ns/fd", "DirectOpenClose", "ns/op"), "C b64 per fd / C direct: " r("CReference/b64", "c-ns/fd", "CReference/direct", "c-ns/op") "; vs os.Open: " r("OpenBatch64", "ns/fd", "DirectOsOpen", "ns/op"))
	row("start-to-first-fd / bare re-exec", r("StartToFirstFD", "first-fd-median-ns", "BareReexec", "median-ns"), "(medians; Close included " r("StartToFirstFD", "median-ns", "BareReexec", "median-ns") ", means with Close " r("StartToFirstFD", "ns/op", "BareReexec", "ns/op") ")")
	row("CPU per single open / C b1 CPU", r("OpenSingle", "cpu-ns/op", "CReference/b1", "c-cpu-ns/op"), "(parent + child CPU time; less sensitive to a busy machine)")
	row("CPU per op, 16 callers / C b1 CPU", r("OpenConcurrent16", "cpu-ns/op", "CReference/b1", "c-cpu-ns/op"), "")
	row("CPU per fd, batch-64 / C b64 CPU per fd", r("OpenBatch64", "cpu-ns/fd", "CReference/b64", "c-cpu-ns/fd"), "")
	row("allocs per single open", have("OpenSingle", "allocs/op") ? get("OpenSingle", "allocs/op") : "n/a", have("OpenSingle", "B/op") ? get("OpenSingle", "B/op") " B/op; direct unix.Open " get("DirectOpenClose", "allocs/op") ", os.Open " get("DirectOsOpen", "allocs/op") : "")
	row("idle child RSS", mib("IdleChildRSS", "rss-bytes"), "C forked child " mib("CReference/b1", "c-child-rss-bytes"))
	row("child allocs per single open", have("ChildAllocs/single", "child-allocs/op") ? get("ChildAllocs/single", "child-allocs/op") : "n/a", \
		"per fd in a batch of 64: " (have("ChildAllocs/batch64", "child-allocs/fd") ? get("ChildAllocs/batch64", "child-allocs/fd") : "n/a") \
		"; per open, 16 callers: " (have("ChildAllocs/concurrent16", "child-allocs/op") ? get("ChildAllocs/concurrent16", "child-allocs/op") : "n/a"))
	row("policy check, 1000 rules (mixed)", have("Check1000Rules/mixed", "ns/op") ? sprintf("%.0f ns", get("Check1000Rules/mixed", "ns/op")) : "n/a", \
		"deep tree " (have("Check1000Rules/deep-tree", "ns/op") ? sprintf("%.0f ns", get("Check1000Rules/deep-tree", "ns/op")) : "n/a") \
		", exact " (have("Check1000Rules/exact", "ns/op") ? sprintf("%.0f ns", get("Check1000Rules/exact", "ns/op")) : "n/a") \
		", miss " (have("Check1000Rules/miss", "ns/op") ? sprintf("%.0f ns", get("Check1000Rules/miss", "ns/op")) : "n/a"))
	if (!have("CReference/b1", "c-ns/op"))
		print "(no C reference figures: gcc or the shared/bench directory is missing; see the SKIP line above)"
}
' "$raw"
