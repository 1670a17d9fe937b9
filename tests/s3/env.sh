#!/bin/sh
# tests/s3/env.sh - the S3 test environment of env.py (s3rver behind the
# signature proxy, optionally a fault server in front) for shell tests and
# for programs in any language.  Two ways to use it:
#
# 1. Run a command inside an environment; everything stops when it ends:
#
#      sh tests/s3/env.sh run [--https] [--fault SCRIPT] ... -- COMMAND [ARG...]
#
#    COMMAND runs with S3_ENDPOINT, S3_BUCKET, S3_REGION, S3_ACCESS_KEY,
#    S3_SECRET_KEY, S3_CA_FILE, S3_OBJECTS_URL, ... in its environment (see
#    tests/s3/README.md); the exit status is COMMAND's, or 125 (with a
#    "FAIL s3_env" line) if the environment did not start.
#
# 2. Source this file from the repository's top directory (or with
#    SLUICE_TOP set) and call the functions:
#
#      . tests/s3/env.sh
#      s3_env_start --https                # sets and exports the S3_* variables
#      trap s3_env_stop EXIT
#      ... "$S3_ENDPOINT" ...
#
#    s3_env_start takes the options of `env.py start` (--https, --name,
#    --bucket, --fault, --fault-default, --bad-certs, --token, --keep) and
#    returns non-zero if the environment did not start.  The environment
#    runs in a background process that stops by itself after an hour if
#    s3_env_stop is never called.  s3_fault ACTION... queues fault-server
#    actions; s3_fault_requests prints what it received (JSON).
#
# Run directly as `sh tests/s3/env.sh start|stop|...`, the arguments go to
# env.py.  Use /usr/bin/python3 (Debian's botocore) - this file does.

s3_env_py() {
	/usr/bin/python3 "${SLUICE_TOP:-$(pwd)}/tests/s3/env.py" "$@"
}

s3_env_start() {
	S3_ENV_STATE=${SLUICE_TOP:-$(pwd)}/build/test-data/s3env-$$
	export S3_ENV_STATE
	s3_env_vars=$(s3_env_py start --state "$S3_ENV_STATE" "$@") || return 1
	eval "$s3_env_vars"
	unset s3_env_vars
}

s3_env_stop() {
	if [ -n "${S3_ENV_STATE:-}" ]; then
		s3_env_py stop --state "$S3_ENV_STATE"
		unset S3_ENV_STATE
	fi
}

s3_fault() {
	/usr/bin/python3 "${SLUICE_TOP:-$(pwd)}/tests/s3/faultserver.py" ctl "$S3_FAULT_URL" push "$@" >/dev/null
}

s3_fault_requests() {
	/usr/bin/python3 "${SLUICE_TOP:-$(pwd)}/tests/s3/faultserver.py" ctl "$S3_FAULT_URL" requests
}

# Executed rather than sourced: hand the arguments to env.py.
case "$0" in
*env.sh)
	SLUICE_TOP=${SLUICE_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
	exec /usr/bin/python3 "$SLUICE_TOP/tests/s3/env.py" "$@"
	;;
esac
