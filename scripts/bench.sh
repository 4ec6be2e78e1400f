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
#   -syscalls N    count system calls over N operations (default 20000)
#   -no-syscalls   skip the system call count
#   -only-syscalls only count system calls (no timed run)
#   -perf          count them with perf's syscall tracepoints, not strace
#   anything else  passed to go test as is (e.g. -cpu 1, -bench 'Open')
#
# System calls are counted with strace -f -c (both processes: the
# benchmark and the opener it starts, every thread) on OpenSingle,
# OpenBatch64 and OpenConcurrent16, each run twice from a test binary built
# once: with -benchtime Nx and with -benchtime 1x. The difference, divided
# by N-1 (and by 64 for the batch, per fd), is the count per operation
# without the process's start, the opener's start and the harness; it is
# printed per system call. strace slows every call down, which changes how
# often the schedulers sleep and spin, so the counts are of the calls an
# operation makes, not of a timing. Without strace on PATH this part is
# skipped with a message (apt-get install strace).
#
# With -perf the same runs are counted by `perf stat -e
# 'syscalls:sys_enter_*'` (children included), which stops no thread: the
# calls that depend on timing (the Go runtime monitor's nanosleep, futex
# wake-ups) come out as they are without a tracer, and each line ends with
# the context switches per operation (perf's context-switches event): on
# one CPU every wake-up of another thread is one. Needs perf and tracefs.
#
# Needs bash, awk and go; gcc and ../shared/bench (beside the module root,
# or $PRIVSEP_BENCH_REF_DIR) for the C reference, which is skipped without
# them. Pin everything to one CPU with: taskset -c 0 scripts/bench.sh
set -euo pipefail

usage() { sed -n '2,/^set -e/{/^set -e/d;s/^# \{0,1\}//;p}' "$0"; }

benchtime=1s
out=
syscalls=20000
only_syscalls=
counter=strace
extra=()
while [ $# -gt 0 ]; do
	case $1 in
	-benchtime) benchtime=${2:?-benchtime needs a value}; shift 2 ;;
	-benchtime=*) benchtime=${1#*=}; shift ;;
	-o) out=${2:?-o needs a file}; shift 2 ;;
	-syscalls) syscalls=${2:?-syscalls needs a count}; shift 2 ;;
	-no-syscalls) syscalls=0; shift ;;
	-only-syscalls) only_syscalls=1; shift ;;
	-perf) counter=perf; shift ;;
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
scratch=$(mktemp -d "${TMPDIR:-/tmp}/privsep-bench-strace.XXXXXX")
trap 'rm -rf "$raw" "$scratch"' EXIT

timed_run() {
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
}

if [ -z "$only_syscalls" ]; then
	timed_run
fi

# trace OUT CMD...: count CMD's system calls, by name, into OUT in strace
# -c's layout (the awk below reads the calls from field 4 and the name from
# the last).
trace() {
	local o=$1
	shift
	if [ "$counter" = strace ]; then
		strace -f -c -o "$o" "$@"
		return
	fi
	perf stat -x, -o "$o.perf" -e 'syscalls:sys_enter_*' -e context-switches -- "$@" || return
	awk -F, '$3 ~ /^syscalls:sys_enter_/ && $1 ~ /^[0-9]+$/ && $1 > 0 {
		sub(/^syscalls:sys_enter_/, "", $3); print "0 0 0", $1, $3 }' "$o.perf" >"$o"
	awk -F, '$3 == "context-switches" && $1 ~ /^[0-9]+$/ { print $1 }' "$o.perf" >"$o.cs"
}

# switches ONE N DIV: context switches per operation between the run of 1
# and the run of N (perf only; empty under strace, which adds its own).
switches() {
	[ -s "$1.cs" ] && [ -s "$2.cs" ] || return 0
	awk -v a="$(cat "$1.cs")" -v b="$(cat "$2.cs")" -v d="$3" 'BEGIN { printf "  (context switches %.2f)", (b - a) / d }'
}

# count_syscalls BENCH N PER: strace -f -c of one benchmark run with N
# iterations and with 1, and the difference per operation (divided by
# (N-1)*PER), by system call.
count_syscalls() {
	local name=$1 n=$2 per=$3 k
	for k in 1 "$n"; do
		(cd "$root/parent" && trace "$scratch/$name.$k" "$scratch/parent.test" \
			-test.run '^$' -test.bench "^Benchmark$name\$" -test.benchtime "${k}x" >"$scratch/$name.$k.out" 2>&1) || {
			echo "bench.sh: strace of $name failed:" >&2
			cat "$scratch/$name.$k.out" >&2
			return 1
		}
	done
	awk -v name="$name" -v div="$(((n - 1) * per))" '
	# strace -c: % time, seconds, usecs/call, calls, [errors,] syscall
	FNR == 1 { f++ }
	/^-/ || /^%/ || /total$/ || NF < 5 { next }
	{
		sc = $NF; calls = $4; errs = (NF >= 6) ? $5 : 0
		c[sc] += (f == 2 ? calls : -calls); e[sc] += (f == 2 ? errs : -errs)
	}
	END {
		t = 0; line = ""
		for (sc in c) { if (c[sc] / div >= 0.05) list[sc] = c[sc] / div; t += c[sc] }
		n = 0
		for (sc in list) keys[++n] = sc
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (list[keys[j]] > list[keys[i]]) { x = keys[i]; keys[i] = keys[j]; keys[j] = x }
		for (i = 1; i <= n; i++) {
			sc = keys[i]
			line = line sprintf(" %s %.2f", sc, list[sc])
			if (e[sc] / div >= 0.05) line = line sprintf(" (%.2f failed)", e[sc] / div)
		}
		printf "%-18s %6.2f  =%s%s\n", name, t / div, line, cs
	}' cs="$(switches "$scratch/$name.1" "$scratch/$name.$n" "$(((n - 1) * per))")" "$scratch/$name.1" "$scratch/$name.$n"
}

echo
if [ "$syscalls" -le 1 ]; then
	echo "System calls: skipped (-no-syscalls)"
elif ! command -v "$counter" >/dev/null 2>&1; then
	echo "System calls: skipped: $counter is not on PATH (apt-get install $counter)"
else
	how="strace -f -c"
	[ "$counter" = perf ] && how="perf stat -e syscalls:sys_enter_*"
	echo "System calls per operation ($how, both processes, all threads; (count at ${syscalls}x - count at 1x) / $((syscalls - 1)))"
	echo "# affinity=$(taskset -pc $$ 2>/dev/null | sed 's/.*: //' || echo '?')"
	go test -c -o "$scratch/parent.test" ./parent/
	count_syscalls OpenSingle "$syscalls" 1
	count_syscalls OpenBatch64 "$((syscalls / 64 + 2))" 64
	count_syscalls OpenConcurrent16 "$syscalls" 1
	if [ -n "${PRIVSEP_BENCH_REF_DIR:-}" ] && command -v gcc >/dev/null 2>&1; then
		gcc -O2 -o "$scratch/broker" "$PRIVSEP_BENCH_REF_DIR/broker_seqpacket.c"
		count_c() { # NAME BATCH N
			local k
			for k in 1 "$3"; do
				trace "$scratch/$1.$k" "$scratch/broker" seq "$2" "$k" "$root/go.mod" >/dev/null 2>&1
			done
			# The program runs ITERATIONS/10+1 warm-up requests first.
			awk -v name="$1" -v div="$((($3 + $3 / 10 + 1 - 2) * $2))" '
			FNR == 1 { f++ }
			/^-/ || /^%/ || /total$/ || NF < 5 { next }
			{ c[$NF] += (f == 2 ? $4 : -$4) }
			END {
				t = 0; line = ""
				for (sc in c) { t += c[sc]; if (c[sc] / div >= 0.05) line = line sprintf(" %s %.2f", sc, c[sc] / div) }
				printf "%-18s %6.2f  =%s%s\n", name, t / div, line, cs
			}' cs="$(switches "$scratch/$1.1" "$scratch/$1.$3" "$((($3 + $3 / 10 + 1 - 2) * $2))")" "$scratch/$1.1" "$scratch/$1.$3"
		}
		count_c C-b1 1 "$syscalls"
		count_c C-b64 64 "$((syscalls / 64 + 2))"
	else
		echo "(no C reference count: gcc or PRIVSEP_BENCH_REF_DIR missing)"
	fi
	echo "(OpenSingle, OpenConcurrent16 and C-b1 per open; OpenBatch64 and C-b64 per fd, in requests of 64)"
fi
