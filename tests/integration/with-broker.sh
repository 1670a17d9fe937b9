#!/bin/sh
# tests/integration/with-broker.sh TESTFILE - runs one integration test
# against a broker of its own.
#
#   1. picks a free TCP port on 127.0.0.1 and makes a fresh, empty data
#      directory DATA = build/test-data/NAME/;
#   2. starts `build/sluice serve` in the background with
#      kernel/sluice.properties and these overrides:
#        listeners=PLAINTEXT://127.0.0.1:PORT  num.partitions=1
#      then, when kernel/sluice.properties names a WAL (durable storage),
#        sluice.wal.device=DATA/wal  sluice.objects.url=file://DATA/objects
#      so that no two tests share data, then the words after "broker-args:"
#      on a comment line of the test ("# broker-args: --set key=value ...",
#      or "// broker-args: ..." in JS), where @DATA@ stands for DATA.
#      When the resulting arguments name a WAL, `build/sluice format` with
#      the same arguments runs first.  Both commands write stdout and stderr
#      to build/test-logs/broker-NAME.log;
#   3. waits up to 10 s for the port to accept connections;
#   4. runs the test (.py with /usr/bin/python3, .js with node, .sh with sh)
#      with BOOTSTRAP=127.0.0.1:PORT, SLUICE_BIN, SLUICE_LOG (the broker's
#      log) and SLUICE_DATA (DATA) in its environment, under a timeout of
#      TEST_TIMEOUT seconds (default 300);
#   5. stops the broker with SIGTERM and waits up to 10 s for it to exit.
#
# The exit status is non-zero if the test failed, the broker died during the
# test, or the broker did not stop cleanly (exit status 0) after SIGTERM.
# A test with a line "# harness: self" ("// harness: self" in JS) starts,
# kills and restarts brokers of its own instead: steps 2, 3 and 5 are
# skipped, and the test runs as in step 4 with PORT (the free port),
# SLUICE_BIN, SLUICE_DATA (DATA, fresh and empty), SLUICE_PROPS
# (kernel/sluice.properties) and SLUICE_LOG (the log its brokers' output
# is appended to) in its environment; the exit status is the test's.  Its
# brokers stay in the test's process group, so the timeout's signals reach
# them too.
#
# Harness failures are printed as "FAIL NAME reason" so tests/run.sh counts
# them; informational lines start with "# ".  The broker is always stopped
# on exit, whatever happens.  The data directory is removed after a clean
# run and kept for inspection otherwise.
set -eu

if [ $# -ne 1 ]; then
	echo "usage: sh tests/integration/with-broker.sh TESTFILE" >&2
	exit 2
fi

top=$(cd "$(dirname "$0")/../.." && pwd)
case "$1" in
/*) test_path=$1 ;;
*) test_path="$(pwd)/$1" ;;
esac
file=$(basename "$test_path")
name=${file%.*}
bin="${SLUICE_BIN:-$top/build/sluice}"
logs="$top/build/test-logs"
log="$logs/broker-$name.log"
data="$top/build/test-data/$name"
timeout_s=${TEST_TIMEOUT:-300}

fail() { echo "FAIL $name $*"; }

if [ ! -f "$test_path" ]; then
	fail "no such test file: $1"
	exit 1
fi
if [ ! -x "$bin" ]; then
	fail "broker binary $bin is missing (run make first)"
	exit 1
fi

case "$file" in
*.py) runner=/usr/bin/python3 ;;
*.js) runner=node ;;
*.sh) runner='sh' ;;
*) fail "unknown test type: $file"; exit 1 ;;
esac

# Extra broker arguments from the test file; words, no quoting, no globbing.
extra=$(sed -n 's|^[[:space:]]*[#/][#/]*[[:space:]]*broker-args:[[:space:]]*||p' "$test_path" | head -n 1)

port=$(/usr/bin/python3 -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')

mkdir -p "$logs"
rm -rf "$data"
mkdir -p "$data"
: >"$log"

pid=""
tpid=""

alive() { # true while the broker process exists and is not a zombie
	[ -n "$pid" ] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
	[ -n "$state" ] && [ "$state" != Z ]
}

# Wait up to $1 tenths of a second for the broker to exit; true if it did.
wait_exit() {
	i=0
	while alive; do
		[ "$i" -ge "$1" ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
	return 0
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	if [ -n "$tpid" ]; then
		kill -TERM "$tpid" 2>/dev/null || true
	fi
	if alive; then
		kill -TERM "$pid" 2>/dev/null || true
		wait_exit 100 || kill -KILL "$pid" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

shown=0
show_log() {
	[ "$shown" -eq 0 ] || return 0
	shown=1
	echo "# ---- last lines of $log"
	tail -n 40 "$log" | sed 's/^/# /'
	echo "# ----"
}

# "# harness: self": the test runs its own brokers (see the top of this file).
if grep -Eq '^[[:space:]]*[#/][#/]*[[:space:]]*harness:[[:space:]]*self[[:space:]]*$' "$test_path"; then
	echo "# self-managed brokers: port $port, data $data, log $log"
	cd "$top"
	PORT="$port" SLUICE_BIN="$bin" SLUICE_DATA="$data" SLUICE_LOG="$log" \
		SLUICE_PROPS="$top/kernel/sluice.properties" \
		timeout -k 10 "$timeout_s" "$runner" "$test_path" </dev/null &
	tpid=$!
	test_status=0
	wait "$tpid" || test_status=$?
	tpid=""
	if [ "$test_status" -eq 124 ] || [ "$test_status" -eq 137 ]; then
		fail "test timed out after $timeout_s s"
	fi
	if [ "$test_status" -ne 0 ]; then
		show_log
		echo "# data kept in $data"
		exit "$test_status"
	fi
	rm -rf "$data"
	exit 0
fi

# A WAL named by the properties file means durable storage: give this test
# its own WAL file, formatted before the broker starts.
props="$top/kernel/sluice.properties"
storage=""
if grep -Eq '^[[:space:]]*sluice\.wal\.device[[:space:]]*[=:][[:space:]]*[^[:space:]]' "$props"; then
	storage="--set sluice.wal.device=$data/wal"
fi
extra=$(printf '%s\n' "$extra" | sed "s|@DATA@|$data|g")

set -f
# shellcheck disable=SC2086 # $storage and $extra are lists of words by design
set -- --config "$props" \
	--set "listeners=PLAINTEXT://127.0.0.1:$port" \
	--set num.partitions=1 \
	$storage $extra
set +f

needs_format=0
for a; do
	case "$a" in
	sluice.wal.device=?*) needs_format=1 ;;
	sluice.wal.device=) needs_format=0 ;;
	esac
done

echo "# broker: $bin serve $* (log $log)"
cd "$top"

if [ "$needs_format" -eq 1 ]; then
	status=0
	"$bin" format "$@" >>"$log" 2>&1 || status=$?
	if [ "$status" -ne 0 ]; then
		fail "sluice format exited with status $status"
		show_log
		exit 1
	fi
fi

"$bin" serve "$@" >>"$log" 2>&1 &
pid=$!

# Ready when a TCP connect succeeds; give up after 10 s or if the broker exits.
ready=0
deadline=$(($(date +%s) + 10))
while [ "$(date +%s)" -lt "$deadline" ]; do
	if ! alive; then
		break
	fi
	if /usr/bin/python3 -c '
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
except OSError:
    sys.exit(1)' "$port" 2>/dev/null; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ "$ready" -ne 1 ]; then
	if alive; then
		fail "broker did not accept connections on 127.0.0.1:$port within 10 s"
	else
		rc=0; wait "$pid" || rc=$?
		fail "broker exited with status $rc before accepting connections"
	fi
	show_log
	exit 1
fi

# In the background, so that a signal to this script is handled at once.
BOOTSTRAP="127.0.0.1:$port" SLUICE_BIN="$bin" SLUICE_LOG="$log" SLUICE_DATA="$data" \
	timeout -k 10 "$timeout_s" "$runner" "$test_path" </dev/null &
tpid=$!
test_status=0
wait "$tpid" || test_status=$?
tpid=""
if [ "$test_status" -eq 124 ] || [ "$test_status" -eq 137 ]; then
	fail "test timed out after $timeout_s s"
fi

broker_status=0
if ! alive; then
	rc=0; wait "$pid" || rc=$?
	pid=""
	fail "broker exited unexpectedly (status $rc)"
	show_log
	broker_status=1
else
	kill -TERM "$pid" 2>/dev/null || true
	if wait_exit 100; then
		rc=0; wait "$pid" || rc=$?
		pid=""
		if [ "$rc" -ne 0 ]; then
			fail "broker exit status $rc after SIGTERM (expected a clean stop, 0)"
			show_log
			broker_status=1
		fi
	else
		fail "broker did not exit within 10 s of SIGTERM"
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=""
		show_log
		broker_status=1
	fi
fi

if [ "$test_status" -ne 0 ] || [ "$broker_status" -ne 0 ]; then
	[ "$test_status" -ne 0 ] && show_log
	echo "# data kept in $data"
	exit 1
fi
rm -rf "$data"
exit 0
