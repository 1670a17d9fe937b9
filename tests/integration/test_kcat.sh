#!/bin/sh
# tests/integration/test_kcat.sh - kcat (librdkafka) produces and consumes
# through the broker at $BOOTSTRAP; run by with-broker.sh.
#
#   kcat_produce_100k    100,000 keyed records from a file, acks=all
#   kcat_roundtrip_100k  consumed back byte for byte, in order
#   kcat_offsets_dense   their offsets are exactly 0..99999
#   kcat_headers_nulls   headers (a repeated key, a null value), a null
#                        value and a null key round-trip
#
# Topics are auto-created (kcat has no admin API) with unique names; every
# kcat runs under timeout(1) so nothing can hang.
set -eu

: "${BOOTSTRAP:?BOOTSTRAP is not set; run through tests/integration/with-broker.sh}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run_id="$$-$(date +%s)"
failures=0

ok() { echo "ok $1"; }
fail() {
	echo "FAIL $1${2:+: $2}"
	failures=$((failures + 1))
}

kc() { # timeout-seconds kcat-arguments...
	t=$1
	shift
	timeout -k 5 "$t" kcat -b "$BOOTSTRAP" -X message.timeout.ms=60000 "$@"
}

# ---- 100,000 records: "key-N<TAB>value-N-<filler of varying length>"
n=100000
topic="kcat-bulk-$run_id"
awk -v n="$n" 'BEGIN {
	filler = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 !\"#$%&()*+,-./:;<=>?@[\\]^_{|}~ \303\251\342\202\254"
	for (i = 0; i < n; i++)
		printf "key-%d\tvalue-%06d-%s\n", i, i, substr(filler, 1, (i * 7) % length(filler))
}' >"$work/in"

if kc 120 -P -t "$topic" -p 0 -K '\t' -X acks=all -X linger.ms=5 -l "$work/in" \
	2>"$work/produce.err"; then
	if grep -qi 'fail\|error' "$work/produce.err"; then
		fail kcat_produce_100k "$(head -n 3 "$work/produce.err")"
	else
		ok kcat_produce_100k
	fi
else
	fail kcat_produce_100k "kcat -P exited with $? $(head -n 3 "$work/produce.err")"
fi

if kc 120 -C -t "$topic" -p 0 -o beginning -e -q -f '%k\t%s\n' \
	>"$work/out" 2>"$work/consume.err"; then
	if cmp -s "$work/in" "$work/out"; then
		ok kcat_roundtrip_100k
	else
		fail kcat_roundtrip_100k "consumed $(wc -l <"$work/out") lines, differ from produced: $(cmp "$work/in" "$work/out" 2>&1 | head -n 1)"
	fi
else
	fail kcat_roundtrip_100k "kcat -C exited with $? $(head -n 3 "$work/consume.err")"
fi

seq 0 $((n - 1)) >"$work/offsets.want"
if kc 120 -C -t "$topic" -p 0 -o beginning -e -q -f '%o\n' \
	>"$work/offsets" 2>"$work/offsets.err"; then
	if cmp -s "$work/offsets.want" "$work/offsets"; then
		ok kcat_offsets_dense
	else
		fail kcat_offsets_dense "offsets are not 0..$((n - 1)): $(diff "$work/offsets.want" "$work/offsets" | head -n 3 | tr '\n' ' ')"
	fi
else
	fail kcat_offsets_dense "kcat -C exited with $? $(head -n 3 "$work/offsets.err")"
fi

# ---- headers and nulls.  -Z on produce turns an empty value or key into
# NULL; -H name without '=' is a header with a null value.  On consume, -Z
# prints NULL for null keys and values and %K/%S give -1 for them.
topic="kcat-headers-$run_id"
printf 'k1\tv1\nk2\t\n\tv3\n' >"$work/hin"
cat >"$work/hwant" <<'EOF'
0|k1|2|v1|2|a=1,b=2,a=3,n=NULL
1|k2|2|NULL|-1|a=1,b=2,a=3,n=NULL
2|NULL|-1|v3|2|a=1,b=2,a=3,n=NULL
EOF
if kc 60 -P -t "$topic" -p 0 -K '\t' -Z -X acks=all \
	-H a=1 -H b=2 -H a=3 -H n -l "$work/hin" 2>"$work/hproduce.err" &&
	kc 60 -C -t "$topic" -p 0 -o beginning -e -q -Z -f '%o|%k|%K|%s|%S|%h\n' \
		>"$work/hout" 2>"$work/hconsume.err"; then
	if cmp -s "$work/hwant" "$work/hout"; then
		ok kcat_headers_nulls
	else
		fail kcat_headers_nulls "got: $(tr '\n' ' ' <"$work/hout")"
	fi
else
	fail kcat_headers_nulls "kcat failed: $(cat "$work/hproduce.err" "$work/hconsume.err" | head -n 3)"
fi

[ "$failures" -eq 0 ]
