#!/bin/sh
# tests/fuzz/run-one.sh - run one libFuzzer target.
#
#   sh tests/fuzz/run-one.sh build/fuzz/fuzz_NAME smoke     (make test)
#   sh tests/fuzz/run-one.sh build/fuzz/fuzz_NAME SECONDS   (make fuzz)
#
# Inputs kept in the tree, never written to by this script:
#   tests/fuzz/corpus/fuzz_NAME/       seeds
#   tests/fuzz/regressions/fuzz_NAME/  inputs that once crashed, kept after the fix
#
# Both modes first replay every regression input and every seed once (files
# given as arguments: libFuzzer runs each once and stops at the first crash),
# then fuzz with the seeds and regressions as read-only corpus directories and
# a writable one in front, where libFuzzer puts the inputs it finds:
#   smoke    -runs=$FUZZ_RUNS (20000); new inputs go to a temporary directory
#            that is removed afterwards
#   SECONDS  -max_total_time=SECONDS; new inputs go to build/fuzz/corpus-NAME/
#            and are kept for the next run
# Inputs are at most 65536 bytes; one input may run 25 s (FUZZ_TIMEOUT).
#
# Output: "ok fuzz_NAME regressions", "ok fuzz_NAME smoke" (or "... fuzz"),
# or FAIL lines; tests/run.sh counts them.  libFuzzer's own output goes to
# build/fuzz/logs/ and its tail is shown on failure.  A crash, leak, timeout
# or out-of-memory input found while fuzzing is copied to build/fuzz/crashes/,
# and the lines printed say how to reproduce it and where it goes once fixed.
# Exit status: 0 all passed, 1 a failure, 2 bad usage.
set -eu

usage() {
	echo "usage: $0 build/fuzz/fuzz_NAME smoke|SECONDS" >&2
	exit 2
}
[ $# -eq 2 ] || usage
bin=$1
mode=$2
case $mode in
smoke) ;;
*[!0-9]* | "" | 0*) usage ;;	# 0 would mean no time limit to libFuzzer
esac
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac

top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"

name=$(basename "$bin")
show_bin=${bin#"$top"/}	# as typed from the top of the tree
short=${name#fuzz_}
seeds=tests/fuzz/corpus/$name
regress=tests/fuzz/regressions/$name
crashes=build/fuzz/crashes
logs=build/fuzz/logs
max_len=65536
timeout=${FUZZ_TIMEOUT:-25}
# Undefined behaviour must stop the run like a crash does; by default UBSan
# only prints and continues.
UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export UBSAN_OPTIONS

if [ ! -x "$bin" ]; then
	echo "FAIL $name (no executable $bin)"
	exit 1
fi
mkdir -p "$logs"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sluice-$name.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

show_log() { # log
	echo "---- last lines of $1"
	tail -n 40 "$1"
	echo "----"
}

# Files of a directory, one per line, sorted; nothing if it does not exist.
list_inputs() { # dir
	[ -d "$1" ] || return 0
	find "$1" -type f ! -name '.*' | LC_ALL=C sort
}

count_inputs() { # dir
	list_inputs "$1" | wc -l | tr -d ' '
}

# ---- replay: regressions, then seeds, each input once ----
replay_log=$logs/$name-replay.log
: >"$replay_log"
n_regress=$(count_inputs "$regress")
n_seeds=$(count_inputs "$seeds")
{ list_inputs "$regress"; list_inputs "$seeds"; } >"$tmp/inputs"
if [ -s "$tmp/inputs" ]; then
	# Corpus file names carry no newlines; split the list on newlines only.
	old_ifs=$IFS
	IFS='
'
	set -f
	# shellcheck disable=SC2046
	set -- $(cat "$tmp/inputs")
	set +f
	IFS=$old_ifs
	status=0
	"$bin" -timeout="$timeout" "$@" >"$replay_log" 2>&1 || status=$?
	if [ "$status" -ne 0 ]; then
		culprit=$(sed -n 's/^Running: //p' "$replay_log" | tail -n 1)
		echo "FAIL $name regressions: ${culprit:-an input} fails (exit status $status)"
		echo "  reproduce: $show_bin ${culprit:-<input>}"
		show_log "$replay_log"
		exit 1
	fi
fi
echo "ok $name regressions ($n_regress regression inputs, $n_seeds seeds)"

# ---- fuzz ----
if [ "$mode" = smoke ]; then
	label=smoke
	corpus=$tmp/corpus
	limit=-runs=${FUZZ_RUNS:-20000}
else
	label="fuzz ${mode}s"
	corpus=build/fuzz/corpus-$short
	limit=-max_total_time=$mode
fi
mkdir -p "$corpus" "$tmp/artifacts"
set -- "$corpus"
[ -d "$seeds" ] && set -- "$@" "$seeds"
[ -d "$regress" ] && set -- "$@" "$regress"
fuzz_log=$logs/$name-$(echo "$label" | cut -d' ' -f1).log
status=0
"$bin" "$limit" -max_len="$max_len" -timeout="$timeout" \
	-artifact_prefix="$tmp/artifacts/" "$@" >"$fuzz_log" 2>&1 || status=$?

found=$(find "$tmp/artifacts" -type f | LC_ALL=C sort)
if [ "$status" -ne 0 ] || [ -n "$found" ]; then
	echo "FAIL $name $label (exit status $status)"
	if [ -n "$found" ]; then
		mkdir -p "$crashes"
		for f in $found; do
			dest=$crashes/$name-$(basename "$f")
			cp "$f" "$dest"
			echo "  input: $dest"
			echo "  reproduce: $show_bin $dest"
			echo "  once fixed: mkdir -p $regress && mv $dest $regress/"
		done
	fi
	show_log "$fuzz_log"
	exit 1
fi
stats=$(grep -E '^#[0-9]+' "$fuzz_log" | tail -n 1 | tr -s '\t ' '  ' || true)
if [ "$mode" = smoke ]; then
	echo "ok $name smoke (${stats:-no stats})"
else
	echo "ok $name $label (${stats:-no stats}; corpus $corpus: $(count_inputs "$corpus") inputs)"
fi
