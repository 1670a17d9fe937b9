#!/bin/sh
# tests/s3/certs.sh DIR [NAME...] - test certificates for the S3 tests, made
# with openssl into DIR (created if missing).  Test-only: the keys are not
# encrypted and the CAs are thrown away with DIR.
#
#   ca.pem, ca.key                the test CA, the one a client is told to trust
#   server.pem, server.key        signed by ca.pem for IP 127.0.0.1, IP ::1,
#                                 DNS localhost, DNS *.localhost and any NAME
#                                 given (e.g. BUCKET.localhost for
#                                 virtual-hosted requests: OpenSSL does not
#                                 let *.localhost match one label under a
#                                 single-label name)
#   wrong-name.pem, .key          signed by ca.pem, but only for
#                                 DNS wrong-name.invalid: a client connecting
#                                 to 127.0.0.1 or localhost must refuse it
#   unknown-ca.pem, .key          a second CA that no client is told about
#   untrusted.pem, untrusted.key  right names (as server.pem) but signed by
#                                 unknown-ca.pem: a client must refuse it
#
# Keys are RSA 2048 (as real S3 serves); KEY_TYPE=ec makes them ECDSA P-256.
# Prints nothing on success; exits non-zero with openssl's message on failure.
# Certificates are valid from now for 30 days (their notBefore is the time of
# the run, so a client clock behind this machine's would see them as not yet
# valid).
set -eu

if [ $# -lt 1 ]; then
	echo "usage: sh tests/s3/certs.sh DIR [NAME...]" >&2
	exit 2
fi
dir=$1
shift
mkdir -p "$dir"
cd "$dir"

case "${KEY_TYPE:-rsa}" in
rsa) newkey="rsa:2048" ;;
ec) newkey="ec -pkeyopt ec_paramgen_curve:P-256" ;;
*) echo "certs.sh: KEY_TYPE must be rsa or ec" >&2; exit 2 ;;
esac

log=openssl.log
: >"$log"
run() { # openssl arguments...; its chatter goes to the log, shown on failure
	if ! openssl "$@" >>"$log" 2>&1; then
		echo "certs.sh: openssl $1 failed in $dir:" >&2
		tail -n 20 "$log" >&2
		exit 1
	fi
}

serial() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n' | sed 's/^/00/'; }

# A self-signed CA.  NAME is the subject's CN.
make_ca() { # base cn
	# shellcheck disable=SC2086 # $newkey is two or three words by design
	run req -x509 -newkey $newkey -nodes -keyout "$1.key" -out "$1.pem" -days 30 \
		-subj "/O=Sluice tests/CN=$2" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-addext "subjectKeyIdentifier=hash" \
		-set_serial "0x$(serial)"
}

# A server certificate signed by CA for the subjectAltName SAN.
make_leaf() { # base ca cn san
	# shellcheck disable=SC2086
	run req -new -newkey $newkey -nodes -keyout "$1.key" -out "$1.csr" \
		-subj "/O=Sluice tests/CN=$3"
	cat >"$1.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName=$4
EOF
	run x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "0x$(serial)" \
		-days 30 -extfile "$1.ext" -out "$1.pem"
	rm -f "$1.csr" "$1.ext"
}

san="IP:127.0.0.1,IP:::1,DNS:localhost,DNS:*.localhost"
for name in "$@"; do
	san="$san,DNS:$name"
done

make_ca ca "Sluice test CA"
make_leaf server ca localhost "$san"
make_leaf wrong-name ca wrong-name.invalid "DNS:wrong-name.invalid"
make_ca unknown-ca "Unknown test CA"
make_leaf untrusted unknown-ca localhost "$san"
chmod 600 ./*.key
rm -f "$log"
