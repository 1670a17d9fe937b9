#!/bin/sh
# bench/run.sh - `make bench`: produce and consume throughput and produce
# latency of build/sluice, beside librdkafka's in-process mock cluster
# measured in the same run with the same client and the same parameters.
#
#   BENCH_RECORDS     records per run (200000)
#   BENCH_SIZE        bytes per record (1024)
#   BENCH_PARTITIONS  partitions of the topic (1)
#   BENCH_WAL         the WAL file or device to format and use
#                     (build/bench/data/wal, formatted afresh each run;
#                     "none" runs the broker without a WAL, in memory)
#   BENCH_WAL_BYTES   size of a WAL file `sluice format` creates (1 GiB)
#   BENCH_SET         extra broker settings, "key=value key=value" (none)
#   BENCH_WAL_SIZES   block sizes of the WAL section ("4096 65536 1048576")
#   BENCH_WAL_SECONDS seconds per run in the WAL section (4; 18 runs)
#   BENCH_S3_MIB      MiB produced, then read back cold, in the shared-storage
#                     section (256)
#   BENCH_S3_PARTITIONS  partitions in the shared-storage section (4)
#   BENCH_S3_RATE     records/s of its latency runs (5000)
#   BENCH_S3_SECONDS  seconds of each latency run (20)
#   BENCH_ONLY        "wal" runs only the WAL section, "kafka" only
#                     produce/consume, "s3" only the shared-storage section
#
# Steps: build build/bench/loadgen with the system gcc against librdkafka;
# format a fresh WAL (build/bench/data/wal unless BENCH_WAL says otherwise);
# start the broker with kernel/sluice.properties on a free
# loopback port (log: build/bench/broker.log); produce, then consume, with
# acks=all; stop the broker; run the same two phases against the mock; print
# a table.  Raw loadgen lines go to build/bench/results.txt, loadgen
# diagnostics to build/bench/*.err.  The broker is stopped before the mock
# runs, so the two never share CPUs.
#
# Any failure stops the run with the reason and the tail of the relevant log;
# the broker is stopped on every exit path (trap).
#
# Then the WAL section: build/bench/walbench (bench/walbench.c) beside fio,
# each block size on both write paths; see wal_bench below.
#
# Then the shared-storage section against s3rver (node_modules): cold reads
# beside raw ranged GETs of the same bytes, the upload requests per GiB, and
# produce latency with uploads running beside uploads held back; see s3_bench
# below.  s3rver is stopped on every exit path too.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

out=build/bench
data=$out/data
records=${BENCH_RECORDS:-200000}
size=${BENCH_SIZE:-1024}
partitions=${BENCH_PARTITIONS:-1}
wal_arg=${BENCH_WAL:-build/bench/data/wal}
wal_bytes=${BENCH_WAL_BYTES:-1073741824}
acks=all
linger_ms=5
compression=none
config=kernel/sluice.properties
broker=""
wal_sizes=${BENCH_WAL_SIZES:-4096 65536 1048576}
wal_secs=${BENCH_WAL_SECONDS:-4}
only=${BENCH_ONLY:-}
s3_mib=${BENCH_S3_MIB:-256}
s3_partitions=${BENCH_S3_PARTITIONS:-4}
s3_rate=${BENCH_S3_RATE:-5000}
s3_secs=${BENCH_S3_SECONDS:-20}
s3rver=""
broker_log=$out/broker.log

die() {
	echo "bench: $*" >&2
	exit 1
}

show_tail() { # file
	if [ -s "$1" ]; then
		echo "---- last lines of $1" >&2
		tail -n 30 "$1" >&2
		echo "----" >&2
	fi
}

# Stop the broker: SIGTERM (it flushes and exits), SIGKILL after 10 s.
stop_broker() {
	[ -n "$broker" ] || return 0
	if kill -0 "$broker" 2>/dev/null; then
		kill "$broker" 2>/dev/null || true
		i=0
		while kill -0 "$broker" 2>/dev/null && [ $i -lt 10 ]; do
			sleep 1
			i=$((i + 1))
		done
		if kill -0 "$broker" 2>/dev/null; then
			echo "bench: broker ignored SIGTERM for 10 s, killing it" >&2
			kill -9 "$broker" 2>/dev/null || true
		fi
	fi
	wait "$broker" 2>/dev/null || true
	broker=""
}

stop_s3rver() {
	[ -n "$s3rver" ] || return 0
	kill "$s3rver" 2>/dev/null || true
	wait "$s3rver" 2>/dev/null || true
	s3rver=""
}

cleanup() {
	stop_broker
	stop_s3rver
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Fail the run, saying whether the broker is the reason.
phase_failed() { # what errfile
	show_tail "$2"
	if [ -n "$broker" ] && ! kill -0 "$broker" 2>/dev/null; then
		status=0
		wait "$broker" || status=$?
		broker=""
		show_tail "$broker_log"
		die "$1 failed: the broker died (exit status $status), see $broker_log"
	fi
	die "$1 failed, see $2"
}

# Run one loadgen phase in the background, watching the broker meanwhile, so
# a dead broker ends the run at once rather than after loadgen's own 120 s
# stall limit.  Its stdout goes to outfile, stderr to errfile.  (The shell
# reaps exited children while `sleep` runs, so kill -0 sees a death.)
run_phase() { # what outfile errfile command...
	what=$1; outf=$2; errf=$3
	shift 3
	"$@" >"$outf" 2>"$errf" &
	lg=$!
	while kill -0 "$lg" 2>/dev/null; do
		if [ -n "$broker" ] && ! kill -0 "$broker" 2>/dev/null; then
			kill "$lg" 2>/dev/null || true
			wait "$lg" 2>/dev/null || true
			phase_failed "$what" "$errf"
		fi
		sleep 1
	done
	status=0
	wait "$lg" || status=$?
	if [ "$status" -ne 0 ]; then
		cat "$outf"
		phase_failed "$what (loadgen exit status $status)" "$errf"
	fi
}

field() { # line key
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

port_is_free() { # port
	if command -v ss >/dev/null 2>&1; then
		[ -z "$(ss -Htln "sport = :$1" 2>/dev/null)" ]
	else
		return 0	# the broker's bind would fail and say so in its log
	fi
}

pick_port() {
	tries=0
	while [ $tries -lt 50 ]; do
		r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
		p=$((20000 + r % 40000))
		if port_is_free "$p"; then
			echo "$p"
			return 0
		fi
		tries=$((tries + 1))
	done
	return 1
}

# Start `build/sluice serve "$@"` (output in $broker_log) and wait until it
# answers Metadata on 127.0.0.1:$port; stop the run if it dies or does not.
start_broker() {
	build/sluice serve "$@" >"$broker_log" 2>&1 &
	broker=$!
	i=0
	until kcat -b "127.0.0.1:$port" -L -m 1 >/dev/null 2>&1; do
		if ! kill -0 "$broker" 2>/dev/null; then
			status=0
			wait "$broker" || status=$?
			broker=""
			show_tail "$broker_log"
			die "the broker exited during startup (status $status), see $broker_log"
		fi
		i=$((i + 1))
		[ $i -lt 30 ] || { show_tail "$broker_log"; die "the broker did not answer Metadata on port $port within 30 s"; }
		sleep 1
	done
}

# ---- the WAL beside fio ----
#
# build/bench/walbench appends fixed-size records to a fresh WAL file in
# build/bench/ on each write path; fio writes the same block sizes to a file
# beside it, same file system, same run, psync and io_uring, each write
# followed by fdatasync.  The targets: WAL MB/s >= 90% of fio's and WAL p99
# <= 1.5x fio's p99, at the same queue depth (1).  Depth 16 rows (several
# appends per turn, several commits in flight on io_uring) have no fio
# counterpart and are shown for the paths' comparison only.
#
# --overwrite=1 makes fio write its file in full before timing, as walbench
# does: without it fio only fallocates, and every timed fdatasync also pays
# for converting unwritten extents (half the throughput at 64 KiB here),
# which a WAL past its first lap, or on a block device, never does.
wal_bench() {
	if ! command -v fio >/dev/null 2>&1; then
		echo "bench: fio is missing (apt-get install fio): WAL section skipped" >&2
		return 0
	fi
	[ -x build/bench/walbench ] || die "build/bench/walbench is missing: run 'make build/bench/walbench'"
	secs=$wal_secs
	res=$out/wal-results.txt
	: >"$res"
	echo "bench: WAL beside fio, $secs s per run, block sizes $wal_sizes"
	for bs in $wal_sizes; do
		for io in pwrite uring; do
			for depth in 1 16; do
				build/bench/walbench --file "$out/walbench.wal" --io "$io" --bs "$bs" \
					--depth "$depth" --seconds "$secs" >>"$res" 2>"$out/walbench.err" || {
					show_tail "$out/walbench.err"
					die "walbench --io $io --bs $bs --depth $depth failed"
				}
			done
		done
		for engine in psync io_uring; do
			fio --name=wal --filename="$out/fio.tmp" --size=512M --rw=write --bs="$bs" \
				--direct=1 --ioengine="$engine" --iodepth=1 --fdatasync=1 --overwrite=1 \
				--runtime="$secs" --time_based --output-format=json \
				>"$out/fio-$engine-$bs.json" 2>"$out/fio.err" || {
				show_tail "$out/fio.err"
				die "fio --ioengine=$engine --bs=$bs failed"
			}
			python3 - "$out/fio-$engine-$bs.json" "$engine" "$bs" >>"$res" <<'PY' ||
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
w, s = job["write"], job.get("sync", {})
def pct(sec, p):
    # fio gives percentiles of a write's completion latency (clat; psync and
    # iodepth 1 add no queueing before it) and of a flush's total latency.
    for key in ("clat_ns", "lat_ns"):
        d = sec.get(key, {}).get("percentile")
        if d:
            return d.get(p, 0) / 1000.0
    return 0.0
# fio times the write and the fdatasync apart; one WAL append is both, so a
# percentile is shown as the write's plus the flush's (an upper bound on the
# percentile of their sum).
row = {p: pct(w, p) + pct(s, p) for p in ("50.000000", "99.000000", "99.900000")}
print("fio engine=%s depth=1 bs=%s mb_per_s=%.1f p50_us=%.0f p99_us=%.0f p999_us=%.0f "
      "write_p99_us=%.0f sync_p99_us=%.0f" % (sys.argv[2], sys.argv[3], w["bw_bytes"] / 2**20,
      row["50.000000"], row["99.000000"], row["99.900000"], pct(w, "99.000000"), pct(s, "99.000000")))
PY
				die "could not read fio's JSON output $out/fio-$engine-$bs.json"
		done
	done
	rm -f "$out/fio.tmp"
	wal_dir=$(cd "$out" && pwd)
	echo
	echo "WAL: $(nproc) CPUs, Linux $(uname -r), file system $(stat -f -c %T "$wal_dir" 2>/dev/null)" \
		"on $(df -P "$wal_dir" 2>/dev/null | awk 'NR == 2 { print $1 }'); MB = 2^20 bytes; latency in us"
	python3 - "$res" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    f = line.split()
    kv = dict(x.split("=", 1) for x in f[1:])
    kv["kind"] = f[0]
    rows.append(kv)
def find(kind, bs, **want):
    for r in rows:
        if r["kind"] == kind and r["bs"] == bs and all(r.get(k) == v for k, v in want.items()):
            return r
    return None
print("%-8s %-20s %9s %9s %9s %9s   %s" % ("bs", "writer", "MB/s", "p50", "p99", "p99.9",
      "targets vs fio at depth 1: MB/s >= 90%, p99 <= 1.5x"))
for bs in sorted({r["bs"] for r in rows}, key=int):
    label = "%dk" % (int(bs) // 1024) if int(bs) < 1 << 20 else "%dM" % (int(bs) >> 20)
    for kind, name, want, base in (
            ("fio", "fio psync", {"engine": "psync"}, None),
            ("walbench", "wal pwrite", {"io": "pwrite", "depth": "1"}, "psync"),
            ("fio", "fio io_uring", {"engine": "io_uring"}, None),
            ("walbench", "wal uring", {"io": "uring", "depth": "1"}, "io_uring"),
            ("walbench", "wal pwrite depth 16", {"io": "pwrite", "depth": "16"}, None),
            ("walbench", "wal uring depth 16", {"io": "uring", "depth": "16"}, None)):
        r = find(kind, bs, **want)
        if not r:
            continue
        note = ""
        if base:
            b = find("fio", bs, engine=base)
            if b and float(b["mb_per_s"]) > 0 and float(b["p99_us"]) > 0:
                tp = float(r["mb_per_s"]) / float(b["mb_per_s"])
                lp = float(r["p99_us"]) / float(b["p99_us"])
                note = "%3.0f%% of fio %s, p99 %.2fx: %s" % (100 * tp, base, lp,
                        "met" if tp >= 0.9 and lp <= 1.5 else "MISSED")
        print("%-8s %-20s %9s %9s %9s %9s   %s" % (label, name, r["mb_per_s"], r["p50_us"],
              r["p99_us"], r["p999_us"], note))
PY
	echo "WAL MB/s counts payload (each append is bs - 64 bytes, so a commit of one is bs on the device);"
	echo "fio's latency is its write's plus its fdatasync's at the same percentile (an upper bound)."
	echo "raw results: $res"
}

# ---- shared storage against s3rver ----
#
# One s3rver (node_modules/s3rver, data in build/bench/s3/data, log
# build/bench/s3/s3rver.log) with one bucket, "bench"; each broker below gets
# its own prefix of it, a WAL formatted afresh (build/bench/s3/wal), the
# default settings of kernel/sluice.properties unless named, and records of
# BENCH_SIZE random bytes (loadgen --payload random: zstd finds nothing to
# take out, so stored bytes are about payload bytes).  BENCH_SET does not
# apply here.
#
#   cold/    produce BENCH_S3_MIB MiB over BENCH_S3_PARTITIONS partitions, as
#            fast as the broker takes them; wait until the manifest holds
#            every record (bench/s3bench.py wait); count the write requests
#            (s3bench.py cost); consume from memory (sluice.tail.bytes is
#            twice the data, so nothing left memory: a control); restart the
#            broker, which then holds nothing in memory, and consume
#            everything from offset 0 (from the objects); then, broker
#            stopped, replay the GETs the broker's block cache makes as raw
#            ranged GETs with boto3 (s3bench.py rawread), as many at a time
#            as there are partitions, and one at a time.
#   quiet/   produce BENCH_S3_RATE records/s for BENCH_S3_SECONDS with
#            uploads held back (sluice.upload.bytes 1 TiB, interval one day:
#            the WAL keeps everything);
#   upload/  the same load with the default upload settings; then wait for
#            the manifest and count the write requests again.
#
# Every step's key=value line goes to build/bench/s3/results.txt, prefixed
# with the step's name; the table is printed from there.
s3_bench() {
	s3js=node_modules/s3rver/bin/s3rver.js
	command -v node >/dev/null 2>&1 || die "node is missing: the shared-storage section runs s3rver with it"
	[ -f "$s3js" ] || die "$s3js is missing (make deps installs it)"
	python3 -c 'import boto3' 2>/dev/null || die "python3 cannot import boto3 (apt-get install python3-boto3)"
	s3dir=$out/s3
	rm -rf "$s3dir"
	mkdir -p "$s3dir/data"
	s3log=$s3dir/s3rver.log
	res=$s3dir/results.txt
	: >"$res"
	s3port=$(pick_port) || die "found no free port for s3rver"
	# FORCE_COLOR=1: only in colour do s3rver's request lines keep their
	# method and path, which s3bench.py counts.  --openssl-legacy-provider:
	# s3rver's list tokens use DES (tests/s3/env.py).
	FORCE_COLOR=1 node --openssl-legacy-provider "$s3js" -d "$s3dir/data" -a 127.0.0.1 \
		-p "$s3port" --configure-bucket bench >"$s3log" 2>&1 &
	s3rver=$!
	i=0
	until grep -q 'S3rver listening' "$s3log" 2>/dev/null; do
		if ! kill -0 "$s3rver" 2>/dev/null; then
			s3rver=""
			show_tail "$s3log"
			die "s3rver exited during startup, see $s3log"
		fi
		i=$((i + 1))
		[ $i -lt 300 ] || { show_tail "$s3log"; die "s3rver did not start within 30 s, see $s3log"; }
		sleep 0.1
	done
	endpoint=http://127.0.0.1:$s3port
	port=$(pick_port) || die "found no free port"
	s3_bytes=$((s3_mib * 1048576 / size * size))
	s3_records=$((s3_bytes / size))
	[ "$s3_records" -gt 0 ] || die "BENCH_S3_MIB=$s3_mib holds no record of $size bytes"
	lat_records=$((s3_rate * s3_secs))
	[ "$lat_records" -gt 0 ] || die "BENCH_S3_RATE and BENCH_S3_SECONDS must be above 0"
	pp="--partitions $s3_partitions --size $size --payload random --acks $acks --linger-ms $linger_ms --compression $compression"
	stamp=$(date +%s)-$$
	echo "bench: shared storage against s3rver on $endpoint, $s3_partitions partitions;" \
		"cold reads of $s3_mib MiB, then $s3_secs s at $s3_rate records/s twice"

	# -- cold reads, and the cost of uploading them
	topic=s3-cold-$stamp
	s3_broker cold format cold --set "sluice.tail.bytes=$((s3_bytes * 2))"
	# shellcheck disable=SC2086 # $pp is a list of words on purpose
	s3_step produce "s3 produce" "$out/loadgen" produce --bootstrap "127.0.0.1:$port" \
		--topic "$topic" --records "$s3_records" $pp
	s3_step committed "waiting for the uploads" s3_tool cold wait --topic "$topic" \
		--records "$s3_records" --timeout 300
	s3_step cost "counting the uploads" s3_tool cold cost --log "$s3log" --bytes "$s3_bytes"
	from=$(($(wc -l <"$s3log") + 1))
	s3_step hot "s3 consume from memory" "$out/loadgen" consume --bootstrap "127.0.0.1:$port" \
		--topic "$topic" --records "$s3_records" --partitions "$s3_partitions"
	to=$(($(wc -l <"$s3log") + 1))
	stop_broker
	s3_step hotreq "counting the reads from memory" s3_tool cold requests --log "$s3log" \
		--from-line "$from" --to-line "$to"
	s3_broker cold keep cold-restarted --set "sluice.tail.bytes=$((s3_bytes * 2))"
	from=$(($(wc -l <"$s3log") + 1))
	s3_step cold "s3 consume from objects" "$out/loadgen" consume --bootstrap "127.0.0.1:$port" \
		--topic "$topic" --records "$s3_records" --partitions "$s3_partitions"
	to=$(($(wc -l <"$s3log") + 1))
	stop_broker
	s3_step coldreq "counting the cold reads" s3_tool cold requests --log "$s3log" \
		--from-line "$from" --to-line "$to"
	s3_step rawpar "raw GETs" s3_tool cold rawread --topic "$topic" --parallel "$s3_partitions"
	s3_step rawseq "raw GETs" s3_tool cold rawread --topic "$topic" --parallel 1

	# -- produce latency with uploads held back, then running
	topic=s3-lat-$stamp
	s3_broker quiet format quiet --set sluice.upload.bytes=1099511627776 \
		--set sluice.upload.interval.ms=86400000
	# shellcheck disable=SC2086
	s3_step quiet "s3 produce, uploads held back" "$out/loadgen" produce \
		--bootstrap "127.0.0.1:$port" --topic "$topic" --records "$lat_records" --rate "$s3_rate" $pp
	s3_step quietreq "counting requests" s3_tool quiet requests --log "$s3log"
	stop_broker
	s3_broker upload format upload
	# shellcheck disable=SC2086
	s3_step upload "s3 produce, uploads running" "$out/loadgen" produce \
		--bootstrap "127.0.0.1:$port" --topic "$topic" --records "$lat_records" --rate "$s3_rate" $pp
	s3_step uploaded "waiting for the uploads" s3_tool upload wait --topic "$topic" \
		--records "$lat_records" --timeout 300
	s3_step uploadcost "counting the uploads" s3_tool upload cost --log "$s3log" \
		--bytes "$((lat_records * size))"
	stop_broker
	# The same with compaction looking every 2 s: objects of about 5 MiB are
	# small (under half of sluice.upload.bytes), so runs of them get merged.
	s3_broker compact format compact --set sluice.compaction.interval.ms=2000
	# shellcheck disable=SC2086
	s3_step compact "s3 produce, uploads and compaction running" "$out/loadgen" produce \
		--bootstrap "127.0.0.1:$port" --topic "$topic" --records "$lat_records" --rate "$s3_rate" $pp
	stop_broker
	echo "compactlog broker merges=$(grep -c 'compaction: .* merged into' "$broker_log")" >>"$res"
	stop_s3rver
	s3_report
}

# A broker for the shared-storage section: prefix of the bucket, "format" (a
# fresh WAL) or "keep", the name of its log (build/bench/s3/broker-NAME.log),
# then --set words of its own.
s3_broker() {
	s3_prefix=$1
	s3_format=$2
	broker_log=$s3dir/broker-$3.log
	shift 3
	set -- --config "$config" --set "listeners=PLAINTEXT://127.0.0.1:$port" \
		--set "sluice.wal.device=$top/$s3dir/wal" --set "sluice.wal.capacity.bytes=$wal_bytes" \
		--set "sluice.objects.url=s3://bench/$s3_prefix?region=us-east-1&endpoint=$endpoint&path_style=true" \
		--set sluice.s3.access.key=S3RVER --set sluice.s3.secret.key=S3RVER "$@"
	if [ "$s3_format" = format ]; then
		build/sluice format --force "$@" >"$s3dir/format.log" 2>&1 || {
			show_tail "$s3dir/format.log"
			die "'sluice format' failed, see $s3dir/format.log"
		}
	fi
	start_broker "$@"
}

# bench/s3bench.py against s3rver's bucket, below prefix $1.
s3_tool() {
	p=$1
	shift
	python3 bench/s3bench.py --endpoint "$endpoint" --bucket bench --prefix "$p" "$@"
}

# One step: run the command as a phase (the broker watched), keep its line
# in the results under the step's name.
s3_step() { # name what command...
	n=$1
	w=$2
	shift 2
	run_phase "$w" "$s3dir/$n.out" "$s3dir/$n.err" "$@"
	[ -s "$s3dir/$n.out" ] || die "$w printed nothing, see $s3dir/$n.err"
	sed "s/^/$n /" "$s3dir/$n.out" >>"$res"
}

s3_report() {
	echo
	echo "shared storage: s3rver $(node -e 'console.log(require("./node_modules/s3rver/package.json").version)' 2>/dev/null)" \
		"(node $(node --version)) on 127.0.0.1, files in $s3dir/data, on the same CPUs as the broker;" \
		"$s3_partitions partitions, records of $size random bytes, acks=$acks; MB = 2^20 bytes"
	python3 - "$res" "$s3_mib" "$s3_rate" "$s3_secs" "$size" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows[f[0]] = dict(x.split("=", 1) for x in f[2:] if "=" in x)
mib, rate, secs, size = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
g = lambda step, key: rows.get(step, {}).get(key, "?")
print()
print("cold reads: %s MiB produced, uploaded, broker restarted, everything read from offset 0" % mib)
print("%-50s %9s %9s %6s %12s" % ("reader", "MB/s", "seconds", "GETs", "bytes"))
print("%-50s %9s %9s %6s %12s" % ("sluice consume, from objects (restarted broker)", g("cold", "mb_per_s"),
      g("cold", "seconds"), g("coldreq", "data_gets"), g("cold", "bytes")))
for step, k in (("rawpar", g("rawpar", "parallel")), ("rawseq", "1")):
    print("%-50s %9s %9s %6s %12s" % ("raw ranged GETs of the same blocks, %s at a time" % k,
          g(step, "mb_per_s"), g(step, "seconds"), g(step, "gets"), g(step, "bytes")))
print("%-50s %9s %9s %6s %12s" % ("control: sluice consume, from memory (before)", g("hot", "mb_per_s"),
      g("hot", "seconds"), g("hotreq", "data_gets"), g("hot", "bytes")))
print("sluice bytes are payload, raw bytes the blocks' stored bytes; GETs of data objects, indexes included")
print()
print("upload cost at the default upload settings (write requests: PUT, UploadPart, Create/Complete"
      "MultipartUpload, all PUT-class on S3)")
print("%-36s %8s %9s %9s %9s %10s %8s" % ("run", "objects", "avg MiB", "versions", "requests",
      "multipart", "per GiB"))
for step, label in (("cost", "%s MiB as fast as possible" % mib),
                    ("uploadcost", "%d records/s for %s s" % (rate, secs))):
    mp = sum(int(g(step, k)) for k in ("part_puts", "mpu_creates", "mpu_completes")
             if g(step, k) != "?")
    print("%-36s %8s %9s %9s %9s %10d %8s" % (label, g(step, "objects"), g(step, "avg_object_mib"),
          g(step, "manifest_versions"), g(step, "writes"), mp, g(step, "writes_per_gib")))
print("after produce, waited %s s (%s MiB run) and %s s (rate-limited run) until the manifest held every record"
      % (g("committed", "seconds"), mib, g("uploaded", "seconds")))
print()
print("produce latency, %d records/s (%.2f MB/s) for %s s, acks=all" % (rate, rate * size / 2**20, secs))
print("%-50s %9s %9s %9s %9s" % ("broker", "p50 ms", "p99 ms", "max ms", "objects"))
print("%-50s %9s %9s %9s %9s" % ("uploads held back (1 TiB / 1 day)", g("quiet", "p50_ms"),
      g("quiet", "p99_ms"), g("quiet", "max_ms"), int(g("quietreq", "object_puts")) +
      int(g("quietreq", "mpu_creates"))))
print("%-50s %9s %9s %9s %9s" % ("uploads running (defaults)", g("upload", "p50_ms"),
      g("upload", "p99_ms"), g("upload", "max_ms"), g("uploadcost", "objects")))
print("%-50s %9s %9s %9s %9s" % ("uploads and compaction running (every 2 s)", g("compact", "p50_ms"),
      g("compact", "p99_ms"), g("compact", "max_ms"), "%s merges" % g("compactlog", "merges")))
PY
	echo "raw results: $res; logs: $s3dir/*.log"
}

# ---- preconditions and build ----
mkdir -p "$out"
if [ "$only" = wal ]; then
	wal_bench
	exit 0
fi
case $only in "" | kafka | s3) ;; *) die "BENCH_ONLY=$only: wal, kafka or s3" ;; esac
[ -x build/sluice ] || die "build/sluice is missing: run 'make' first"
[ -f "$config" ] || die "$config is missing"
command -v kcat >/dev/null 2>&1 || die "kcat is missing (make deps installs it)"
gcc -std=c11 -O2 -Wall -Wextra -Werror -o "$out/loadgen" bench/loadgen.c -lrdkafka -lpthread ||
	die "could not build $out/loadgen (librdkafka-dev missing? make deps installs it)"
if [ "$only" = s3 ]; then
	s3_bench
	exit 0
fi

# ---- broker ----
port=$(pick_port) || die "found no free port"
set -- --config "$config" --set "listeners=PLAINTEXT://127.0.0.1:$port"
# Which WAL the broker writes, for the report: the file's, then ours.
# Never the WAL of kernel/sluice.properties: that one belongs to `make run`.
wal=""
if [ "$wal_arg" = none ]; then
	set -- "$@" --set "sluice.wal.device="
	wal_arg=""
else
	rm -rf "$data"
	mkdir -p "$data"
	case $wal_arg in /*) wal=$wal_arg ;; *) wal=$top/$wal_arg ;; esac
	set -- "$@" --set "sluice.wal.device=$wal" \
		--set "sluice.wal.capacity.bytes=$wal_bytes"
fi
set -f	# BENCH_SET is split on blanks, never globbed
for kv in ${BENCH_SET:-}; do
	set -- "$@" --set "$kv"
	case $kv in sluice.wal.device=*) wal=${kv#*=} ;; esac
done
set +f

if [ -n "$wal_arg" ]; then
	build/sluice format --force "$@" >"$out/format.log" 2>&1 || {
		show_tail "$out/format.log"
		die "'sluice format' failed, see $out/format.log"
	}
fi
start_broker "$@"

common="--records $records --size $size --partitions $partitions --acks $acks --linger-ms $linger_ms --compression $compression"
topic="bench-$(date +%s)-$$"

echo "bench: sluice on 127.0.0.1:$port, $records records of $size bytes, $partitions partition(s)"
# shellcheck disable=SC2086 # $common is a list of words on purpose
run_phase "sluice produce" "$out/sluice-produce.out" "$out/sluice-produce.err" \
	"$out/loadgen" produce --bootstrap "127.0.0.1:$port" --topic "$topic" $common
run_phase "sluice consume" "$out/sluice-consume.out" "$out/sluice-consume.err" \
	"$out/loadgen" consume --bootstrap "127.0.0.1:$port" --topic "$topic" \
	--records "$records" --partitions "$partitions"
sp=$(sed -n 's/^produce //p' "$out/sluice-produce.out")
sc=$(sed -n 's/^consume //p' "$out/sluice-consume.out")
if [ -z "$sp" ] || [ -z "$sc" ]; then
	die "loadgen printed no results, see $out/sluice-*.out"
fi
stop_broker

echo "bench: mock cluster, same parameters"
# shellcheck disable=SC2086
run_phase "mock run" "$out/mock.out" "$out/mock.err" \
	"$out/loadgen" mock --topic "$topic" $common
mp=$(sed -n 's/^mock produce //p' "$out/mock.out")
mc=$(sed -n 's/^mock consume //p' "$out/mock.out")
if [ -z "$mp" ] || [ -z "$mc" ]; then
	die "mock run printed no results, see $out/mock.out"
fi
{
	echo "sluice produce $sp"
	echo "sluice consume $sc"
	echo "mock produce $mp"
	echo "mock consume $mc"
} >"$out/results.txt"

# ---- report ----
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
if [ -z "$wal" ]; then
	durability="no WAL (sluice.wal.device is empty): acknowledged records are in memory only"
elif [ -b "$wal" ]; then
	durability="WAL on block device $wal"
else
	wal_dir=$(dirname "$wal")
	wal_fs=$(stat -f -c %T "$wal_dir" 2>/dev/null || echo unknown)
	wal_dev=$(df -P "$wal_dir" 2>/dev/null | awk 'NR == 2 { print $1 }')
	durability="WAL file $wal on ${wal_dev:-unknown device} ($wal_fs)"
fi
echo
echo "machine: $(nproc) CPUs, ${cpu:-unknown CPU}, Linux $(uname -r)"
echo "sluice: $(build/sluice version 2>/dev/null | head -n 1 || true); durability: $durability"
echo "parameters: $records records of $size bytes, $partitions partition(s), acks=$acks," \
	"linger.ms=$linger_ms, compression=$compression, idempotence off; MB = 2^20 bytes"
echo
row() { printf '%-22s %-12s %s\n' "$1" "$2" "$3"; }
row metric sluice "mock (librdkafka, in-process, no durability)"
row "produce MB/s" "$(field "$sp" mb_per_s)" "$(field "$mp" mb_per_s)"
row "produce records/s" "$(field "$sp" records_per_s)" "$(field "$mp" records_per_s)"
row "produce p50 ms" "$(field "$sp" p50_ms)" "$(field "$mp" p50_ms)"
row "produce p99 ms" "$(field "$sp" p99_ms)" "$(field "$mp" p99_ms)"
row "consume MB/s" "$(field "$sc" mb_per_s)" "$(field "$mc" mb_per_s)"
row "consume records/s" "$(field "$sc" records_per_s)" "$(field "$mc" records_per_s)"
echo
rereads=$(field "$mc" rereads)
if [ "${rereads:-0}" != 0 ]; then
	echo "the mock keeps only the newest 5 MiB of each partition: its consumer went back to" \
		"the start $rereads time(s) to read $records records"
fi
echo "raw results: $out/results.txt"
echo
build/bench/crcbench 1048576 2000
build/bench/crcbench 4096 200000
if [ "$only" != kafka ]; then
	echo
	wal_bench
	echo
	s3_bench
fi
