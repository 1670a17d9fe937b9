#!/bin/sh
# tests/run.sh - runs a part of the test ladder and prints one closing line,
# "N passed, N failed".
#
#   tests/run.sh unit BIN...              unit-test binaries
#   tests/run.sh fuzz BIN...              libFuzzer smoke runs (fixed iterations)
#   tests/run.sh integration              tests/integration/test_* against build/sluice
#   tests/run.sh qemu                     tests/qemu/test_*.py: the image under QEMU (make image-build first)
#   tests/run.sh all UNITBIN... -- FUZZBIN...   (and again against $SAN_BIN, if set)
#
# Every test prints "ok NAME" or "FAIL NAME" lines on stdout; a program that
# exits non-zero without printing a FAIL line counts as one failure, so a
# crash is never a silent pass.  Output of each program goes to
# build/test-logs/ and is shown when it fails.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
logs="$top/build/test-logs"
mkdir -p "$logs"
passed=0
failed=0

count() { # name status logfile
	name=$1; status=$2; log=$3
	ok=$(grep -c '^ok ' "$log" 2>/dev/null); ok=${ok:-0}
	bad=$(grep -c '^FAIL ' "$log" 2>/dev/null); bad=${bad:-0}
	if [ "$status" -ne 0 ] && [ "$bad" -eq 0 ]; then bad=1; echo "FAIL $name (exit status $status)"; fi
	if [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ]; then bad=1; echo "FAIL $name (ran no test)"; fi
	passed=$((passed + ok)); failed=$((failed + bad))
	grep -E '^(ok|FAIL) ' "$log" | sed 's/^/  /'
	if [ "$bad" -ne 0 ]; then echo "---- $log"; tail -n 60 "$log"; echo "----"; fi
}

run_unit() {
	for bin in "$@"; do
		n=$(basename "$bin"); log="$logs/unit-$n.log"
		echo "unit $n"
		(cd "$top" && timeout 300 "$bin") >"$log" 2>&1; count "$n" $? "$log"
	done
}

run_fuzz() {
	for bin in "$@"; do
		n=$(basename "$bin"); log="$logs/fuzz-$n.log"
		echo "fuzz $n"
		(cd "$top" && sh tests/fuzz/run-one.sh "$bin" smoke) >"$log" 2>&1; count "$n" $? "$log"
	done
}

run_integration() { # [label] - SLUICE_BIN, when set, names the broker binary
	label=${1:-}
	for t in "$top"/tests/integration/test_*; do
		[ -f "$t" ] || continue
		n=$(basename "$t"); log="$logs/integration${label:+-$label}-$n.log"
		echo "integration${label:+ ($label)} $n"
		(cd "$top" && timeout 900 sh tests/integration/with-broker.sh "$t") >"$log" 2>&1
		count "$n${label:+ ($label)}" $? "$log"
	done
}

# The appliance image under QEMU (TCG here: slow, so few tests, each bounding
# its own boots).  Needs build/sluice.img and friends and build/qemu/poweroff.
run_qemu() {
	for t in "$top"/tests/qemu/test_*.py; do
		[ -f "$t" ] || continue
		n=$(basename "$t"); log="$logs/qemu-$n.log"
		echo "qemu $n"
		(cd "$top" && timeout 1500 python3 "$t") >"$log" 2>&1; count "$n" $? "$log"
		grep -E '^(skip|boot times|image:)' "$log" | sed 's/^/  /'
	done
}

mode=$1; shift
case "$mode" in
unit) run_unit "$@" ;;
fuzz) run_fuzz "$@" ;;
integration) run_integration ;;
qemu) run_qemu ;;
all)
	units=""; while [ $# -gt 0 ] && [ "$1" != "--" ]; do units="$units $1"; shift; done
	[ $# -gt 0 ] && shift
	run_unit $units
	run_fuzz "$@"
	run_integration
	run_qemu
	if [ -n "${SAN_BIN:-}" ]; then
		export SLUICE_BIN="$SAN_BIN"
		run_integration asan
		unset SLUICE_BIN
	fi
	;;
*) echo "usage: $0 unit|fuzz|integration|qemu|all ..." >&2; exit 2 ;;
esac
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
