#!/bin/sh
# broker-args: --set group.initial.rebalance.delay.ms=0
# tests/integration/test_groups_kcat.sh - `kcat -G` (librdkafka's balanced
# consumer) in one group against the broker at $BOOTSTRAP; run by
# with-broker.sh.
#
#   kcat_group_share          two `kcat -G` processes in one group split a
#                             4-partition topic: each reports (stderr, "%
#                             Group ... rebalanced ... assigned: ...") a
#                             non-empty share, together all four partitions
#   kcat_group_consumed_once  400 records produced after both joined are
#                             consumed once in total, each by the member that
#                             owns its partition, with no rebalance mid-way
#   kcat_group_committed      after both stop (SIGTERM: kcat closes the
#                             consumer, which commits), kafka-python's admin
#                             lists the group and its committed offsets (the
#                             end of every partition, 100)
#   kcat_group_resumes        a `kcat -G` restarted in the group reads only
#                             the 40 records produced since, none of the
#                             first 400
#
# The topic is made with confluent-kafka's admin (kcat has none); every kcat
# and every wait is bounded.  `kcat -C -o stored -X group.id=...` is not
# used to read the committed offsets: librdkafka 2.0.2's legacy consumer
# aborts on an assertion (rd_kafka_offset_broker_commit: rktp_cgrp != NULL)
# when it stops after reading a group's stored offset, and it commits on
# stop even with enable.auto.commit=false.
set -eu
export LC_ALL=C

: "${BOOTSTRAP:?BOOTSTRAP is not set; run through tests/integration/with-broker.sh}"

work=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM HUP INT

run_id="$$-$(date +%s)"
topic="kcat-grp-$run_id"
group="kcat-grp-$run_id"
failures=0

ok() { echo "ok $1"; }
fail() {
	echo "FAIL $1${2:+: $2}"
	failures=$((failures + 1))
}
note() { echo "# $*"; }

group_conf="-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000
	-X auto.offset.reset=earliest -X enable.auto.commit=true
	-X auto.commit.interval.ms=500 -X fetch.wait.max.ms=100"

# start_member NAME: a `kcat -G` in the background; records to NAME.out,
# its messages (rebalances) to NAME.err.
start_member() {
	# shellcheck disable=SC2086 # group_conf is a list of words
	timeout -k 5 120 kcat -b "$BOOTSTRAP" -G "$group" $group_conf -u -f '%p %o %s\n' "$topic" \
		>"$work/$1.out" 2>"$work/$1.err" &
	eval "pid_$1=$!"
	pids="$pids $!"
}

# stop_member NAME: SIGTERM, then up to 15 s for kcat to close the consumer.
stop_member() {
	eval "p=\$pid_$1"
	kill -TERM "$p" 2>/dev/null || true
	i=0
	while kill -0 "$p" 2>/dev/null; do
		if [ "$i" -ge 150 ]; then
			note "$1 did not exit within 15 s of SIGTERM"
			kill -KILL "$p" 2>/dev/null || true
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	wait "$p" 2>/dev/null || true
}

# assigned NAME: the partitions of NAME's last rebalance, if it was an
# assignment ("... assigned: topic [0], topic [2]" -> "0 2"), else nothing.
assigned() {
	grep 'rebalanced' "$work/$1.err" 2>/dev/null | tail -n 1 |
		sed -n 's/.*assigned: //p' | grep -o '\[[0-9]*\]' | tr -d '[]' | sort -n | tr '\n' ' ' |
		sed 's/ $//'
}

rebalances() { grep -c 'rebalanced' "$work/$1.err" 2>/dev/null || true; }

lines() { cat "$@" 2>/dev/null | wc -l | tr -d ' '; }

# wait_until SECONDS COMMAND...: true once COMMAND succeeds.
wait_until() {
	limit=$(($1 * 10))
	shift
	i=0
	until "$@"; do
		[ "$i" -ge "$limit" ] && return 1
		sleep 0.1
		i=$((i + 1))
	done
}

both_share() {
	a=$(assigned m1)
	b=$(assigned m2)
	[ -n "$a" ] && [ -n "$b" ] || return 1
	[ "$(printf '%s %s\n' "$a" "$b" | tr ' ' '\n' | sort -n | tr '\n' ' ')" = "0 1 2 3 " ]
}

# produce FIRST COUNT: records FIRST..FIRST+COUNT-1 to every partition, as
# "v-P-I" (kcat -P reads one record per line).
produce() {
	for p in 0 1 2 3; do
		awk -v p="$p" -v a="$1" -v n="$2" 'BEGIN { for (i = a; i < a + n; i++) printf "v-%d-%d\n", p, i }' |
			timeout -k 5 60 kcat -b "$BOOTSTRAP" -P -t "$topic" -p "$p" -X acks=all \
				-X message.timeout.ms=30000 2>>"$work/produce.err" || return 1
	done
}

expected() { # FIRST COUNT: the lines members print for those records
	for p in 0 1 2 3; do
		awk -v p="$p" -v a="$1" -v n="$2" 'BEGIN { for (i = a; i < a + n; i++) printf "%d %d v-%d-%d\n", p, i, p, i }'
	done | sort
}

if ! timeout -k 5 60 /usr/bin/python3 -c '
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
f = a.create_topics([NewTopic(sys.argv[2], num_partitions=4, replication_factor=1)],
                    operation_timeout=10, request_timeout=15)
f[sys.argv[2]].result(timeout=30)
' "$BOOTSTRAP" "$topic" 2>"$work/create.err"; then
	fail kcat_group_setup "creating $topic: $(tail -n 2 "$work/create.err" | tr '\n' ' ')"
	exit 1
fi

# ---- two members share the topic
start_member m1
start_member m2
if wait_until 30 both_share; then
	ok "kcat_group_share (m1 has [$(assigned m1)], m2 has [$(assigned m2)])"
else
	fail kcat_group_share "after 30 s: m1 [$(assigned m1)], m2 [$(assigned m2)]; $(grep rebalanced "$work/m1.err" "$work/m2.err" | tail -n 4 | tr '\n' ' ')"
	exit 1
fi
r1=$(rebalances m1)
r2=$(rebalances m2)

n=100
if ! produce 0 "$n"; then
	fail kcat_group_consumed_once "kcat -P failed: $(tail -n 3 "$work/produce.err" | tr '\n' ' ')"
	exit 1
fi
want=$((4 * n))
all_in() { [ "$(lines "$work/m1.out" "$work/m2.out")" -ge "$want" ]; }
wait_until 30 all_in || true
sleep 1 # anything consumed twice shows up now
expected 0 "$n" >"$work/want1"
sort "$work/m1.out" "$work/m2.out" >"$work/got1"
why=""
if [ "$(rebalances m1)" != "$r1" ] || [ "$(rebalances m2)" != "$r2" ]; then
	why="a rebalance happened while consuming: $(grep rebalanced "$work/m1.err" "$work/m2.err" | tail -n 4 | tr '\n' ' ')"
elif [ -n "$(uniq -d "$work/got1" | head -n 1)" ]; then
	why="$(uniq -d "$work/got1" | wc -l | tr -d ' ') records consumed twice, first: $(uniq -d "$work/got1" | head -n 1)"
elif ! cmp -s "$work/want1" "$work/got1"; then
	why="consumed $(lines "$work/got1") lines, want $want; missing $(comm -23 "$work/want1" "$work/got1" | wc -l | tr -d ' ') (first: $(comm -23 "$work/want1" "$work/got1" | head -n 1)), unexpected $(comm -13 "$work/want1" "$work/got1" | wc -l | tr -d ' ') (first: $(comm -13 "$work/want1" "$work/got1" | head -n 1))"
else
	for m in m1 m2; do
		mine=" $(assigned $m) "
		# shellcheck disable=SC2013 # partition numbers are words
		for p in $(cut -d ' ' -f 1 "$work/$m.out" | sort -u); do
			case "$mine" in
			*" $p "*) ;;
			*) why="$m consumed partition $p, assigned [$(assigned $m)]" ;;
			esac
		done
	done
fi
if [ -z "$why" ]; then
	ok "kcat_group_consumed_once (m1 $(lines "$work/m1.out"), m2 $(lines "$work/m2.out"))"
else
	fail kcat_group_consumed_once "$why"
fi

stop_member m1
stop_member m2

# ---- what the group committed, as kafka-python's admin sees it
if timeout -k 5 60 /usr/bin/python3 -c '
import sys
from kafka import KafkaAdminClient
bootstrap, group, topic = sys.argv[1:4]
a = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000,
                     api_version_auto_timeout_ms=10000)
groups = dict(a.list_consumer_groups())
if groups.get(group) != "consumer":
    sys.exit("group %s listed as %r (protocol type), want \"consumer\"; groups: %s"
             % (group, groups.get(group), sorted(groups)))
offs = a.list_consumer_group_offsets(group)
got = {tp.partition: om.offset for tp, om in offs.items() if tp.topic == topic}
if got != {0: 100, 1: 100, 2: 100, 3: 100}:
    sys.exit("committed offsets %s, want 100 on each of partitions 0-3" % got)
' "$BOOTSTRAP" "$group" "$topic" >"$work/admin.out" 2>&1; then
	ok kcat_group_committed
else
	fail kcat_group_committed "$(tail -n 2 "$work/admin.out" | tr '\n' ' ')"
fi

# ---- 10 more records per partition, produced while the group is empty
m=10
if ! produce "$n" "$m"; then
	fail kcat_group_resumes "kcat -P failed: $(tail -n 3 "$work/produce.err" | tr '\n' ' ')"
	exit 1
fi
# ---- a restarted member resumes from the committed offsets
start_member m3
want=$((4 * m))
new_in() { [ "$(lines "$work/m3.out")" -ge "$want" ]; }
wait_until 30 new_in || true
sleep 1
a3=$(assigned m3)
stop_member m3
expected "$n" "$m" >"$work/want3"
sort "$work/m3.out" >"$work/got3"
if cmp -s "$work/want3" "$work/got3"; then
	ok "kcat_group_resumes (assigned [$a3])"
else
	fail kcat_group_resumes "read $(lines "$work/got3") records, want the $want new ones; first read: $(head -n 1 "$work/m3.out"); missing $(comm -23 "$work/want3" "$work/got3" | wc -l | tr -d ' '), unexpected $(comm -13 "$work/want3" "$work/got3" | wc -l | tr -d ' ') (first: $(comm -13 "$work/want3" "$work/got3" | head -n 1))"
fi

[ "$failures" -eq 0 ]
