# broker-args: --set socket.request.max.bytes=1048576
"""tests/integration/test_malformed.py - hand-built bad frames on raw sockets
against the broker at $BOOTSTRAP; run by with-broker.sh with /usr/bin/python3.

For each bad frame:
  1. a healthy connection is opened first and does an ApiVersions v0 round
     trip;
  2. a second connection sends the bad bytes and must be closed by the
     broker (recv returns 0 or the connection is reset) within 5 s;
  3. the healthy connection must still get a good ApiVersions v0 answer
     (correlation id 1, error_code 0);
  4. the broker log ($SLUICE_LOG) must have gained a WARN or ERROR line
     saying why it closed the connection (case NAME_logged).
The harness also fails the run if the broker dies.

Frames (Kafka's: int32 size, then the request header and body):
  negative_size        size -1
  zero_size            size 0: no room for a request header
  size_above_max       size 2 MiB > socket.request.max.bytes (1 MiB); no body
                       is sent, so only a broker that refuses at once passes
  truncated_header     a complete 6-byte frame holding half a request header
  truncated_at_eof     size 100, 8 bytes, then the client shuts down its side
                       (no log line required: the peer went away)
  metadata_huge_array  ApiVersions v0 answered, then Metadata v1 whose topic
                       array claims 2^31-1 entries in a 4-byte body
  flexible_bad_varint  ApiVersions v3 whose client software name length is
                       a 6-byte unsigned varint (at most 5 are valid)
  huge_compact_string  ApiVersions v3 whose software name length is 2^32-2
  huge_string_length   ApiVersions v0 whose client id claims 32767 bytes
  unknown_api_key      api key 9999: closing is right (Kafka does), an error
                       response with the right correlation id is accepted

Prints "ok NAME" or "FAIL NAME: reason" per case; exits 1 on any failure.
"""

import os
import re
import socket
import struct
import sys
import time
import report
from report import fail, ok

BOOTSTRAP = os.environ.get("BOOTSTRAP", "")
SLUICE_LOG = os.environ.get("SLUICE_LOG")
WATCHDOG_S = 110
CLOSE_WAIT_S = 5
LOG_WAIT_S = 3
WARNING = re.compile(r"\b(WARN|WARNING|ERROR)\b")

# ApiVersions v0, correlation id 1, null client id:
# size 10 | api_key 18 | api_version 0 | correlation_id 1 | client_id -1
APIVERSIONS_V0 = bytes.fromhex("0000000a" "0012" "0000" "00000001" "ffff")


def frame(body):
    return struct.pack(">i", len(body)) + body


def header_v1(api_key, version, corr, client_id=None):
    """Request header v1: key, version, correlation id, nullable string."""
    h = struct.pack(">hhi", api_key, version, corr)
    if client_id is None:
        return h + struct.pack(">h", -1)
    return h + struct.pack(">h", len(client_id)) + client_id


def header_v2(api_key, version, corr):
    """Request header v2: v1 plus an empty tagged-field section."""
    return header_v1(api_key, version, corr) + b"\x00"


def connect():
    host, port = BOOTSTRAP.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=CLOSE_WAIT_S)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_frame(s):
    (size,) = struct.unpack(">i", recv_exact(s, 4))
    if size < 4 or size > 1 << 20:
        raise ValueError("response size %d" % size)
    return recv_exact(s, size)


def apiversions_v0(s):
    """ApiVersions v0 round trip; returns None or what was wrong."""
    try:
        s.sendall(APIVERSIONS_V0)
        body = read_frame(s)
    except (OSError, EOFError, ValueError) as e:
        return "ApiVersions v0 round trip failed: %s" % e
    return check_apiversions_v0(body, 1)


def check_apiversions_v0(body, corr):
    """Response header v0 (correlation id), error_code, [api_key min max]."""
    if len(body) < 10:
        return "ApiVersions response of %d bytes" % len(body)
    got_corr, err, n = struct.unpack(">ihi", body[:10])
    if got_corr != corr:
        return "correlation id %d, want %d" % (got_corr, corr)
    if err != 0:
        return "error_code %d" % err
    if n < 0 or len(body) != 10 + 6 * n:
        return "api_keys array of %d entries in a %d-byte response" % (n, len(body))
    keys = {struct.unpack(">h", body[10 + 6 * i:12 + 6 * i])[0] for i in range(n)}
    if 18 not in keys:
        return "ApiVersions (18) missing from its own response"
    return None


def wait_closed(s):
    """True if the peer closes within CLOSE_WAIT_S; data before the close is ignored."""
    deadline = time.time() + CLOSE_WAIT_S
    while time.time() < deadline:
        s.settimeout(max(0.05, deadline - time.time()))
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
            return True
    return False


def log_size():
    try:
        return os.path.getsize(SLUICE_LOG)
    except (OSError, TypeError):
        return 0


def new_warning(since):
    """A WARN/ERROR line written to the broker log after offset `since`."""
    deadline = time.time() + LOG_WAIT_S
    while True:
        try:
            with open(SLUICE_LOG, "rb") as f:
                f.seek(since)
                for line in f.read().decode("utf-8", "replace").splitlines():
                    if WARNING.search(line):
                        return line.strip()
        except OSError:
            pass
        if time.time() >= deadline:
            return None
        time.sleep(0.1)


def run_case(name, send_bad, allow_response_corr=None, expect_log=True):
    """One bad-frame case (see the module comment).

    send_bad(sock) sends the bad bytes and may return an error string.
    allow_response_corr: a correlation id whose well-framed response counts
    as an acceptable answer instead of a close (unknown api key).
    """
    healthy = bad = None
    try:
        try:
            healthy = connect()
        except OSError as e:
            fail(name, "cannot connect: %s" % e)
            return
        why = apiversions_v0(healthy)
        if why:
            fail(name, "healthy connection before the bad frame: " + why)
            return
        since = log_size()
        bad = connect()
        why = send_bad(bad)
        if why:
            fail(name, why)
            return
        answered = False
        if allow_response_corr is not None:
            bad.settimeout(CLOSE_WAIT_S)
            try:
                body = read_frame(bad)
                corr = struct.unpack(">i", body[:4])[0]
                if corr != allow_response_corr:
                    fail(name, "response with correlation id %d, want %d"
                         % (corr, allow_response_corr))
                    return
                answered = True
            except (OSError, EOFError, ValueError, struct.error):
                pass  # closed (or garbage, then the close check decides)
        if not answered and not wait_closed(bad):
            fail(name, "bad connection still open %d s after the bad frame" % CLOSE_WAIT_S)
            return
        why = apiversions_v0(healthy)
        if why:
            fail(name, "healthy connection after the bad frame: " + why)
            return
        ok(name)
        if answered or not expect_log:
            return
        if not SLUICE_LOG:
            print("# skip %s_logged: SLUICE_LOG is not set" % name, flush=True)
            return
        line = new_warning(since)
        if line:
            ok(name + "_logged")
        else:
            fail(name + "_logged", "no WARN or ERROR line in %s within %d s"
                 % (SLUICE_LOG, LOG_WAIT_S))
    finally:
        for s in (healthy, bad):
            if s is not None:
                s.close()
        # Let the broker log these closes before the next case looks at the log.
        time.sleep(0.2)


def sender(data, shut_wr=False):
    def send(s):
        try:
            s.sendall(data)
            if shut_wr:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:
            # A broker may close early; only a failure to send anything matters.
            return None if isinstance(e, (BrokenPipeError, ConnectionResetError)) else str(e)
        return None
    return send


def metadata_after_apiversions(s):
    s.sendall(APIVERSIONS_V0)
    try:
        why = check_apiversions_v0(read_frame(s), 1)
    except (OSError, EOFError, ValueError) as e:
        why = "no ApiVersions answer: %s" % e
    if why:
        return "ApiVersions v0 before the bad Metadata: " + why
    # Metadata v1: topics array (int32 count) claiming 2^31-1 names, none sent.
    try:
        s.sendall(frame(header_v1(3, 1, 2) + struct.pack(">i", 0x7FFFFFFF)))
    except (BrokenPipeError, ConnectionResetError):
        pass
    return None


def main():
    if not BOOTSTRAP:
        print("BOOTSTRAP is not set; run through tests/integration/with-broker.sh",
              file=sys.stderr)
        return 2
    report.watchdog("malformed", WATCHDOG_S)

    apiv0 = APIVERSIONS_V0[4:]  # the 10-byte request without its size
    run_case("malformed_negative_size", sender(struct.pack(">i", -1) + apiv0))
    run_case("malformed_zero_size", sender(struct.pack(">i", 0)))
    run_case("malformed_size_above_max",
             sender(struct.pack(">i", 2 * 1024 * 1024) + apiv0))
    run_case("malformed_truncated_header",
             sender(frame(struct.pack(">hh", 18, 0) + b"\x00\x00")))
    run_case("malformed_truncated_at_eof",
             sender(struct.pack(">i", 100) + apiv0[:8], shut_wr=True), expect_log=False)
    run_case("malformed_metadata_huge_array", metadata_after_apiversions)
    # ApiVersions v3 body: client_software_name and _version (compact
    # strings), then tagged fields.
    run_case("malformed_flexible_bad_varint",
             sender(frame(header_v2(18, 3, 3) + b"\x80\x80\x80\x80\x80\x01" + b"abc"
                          + b"\x041.0" + b"\x00")))
    run_case("malformed_huge_compact_string",
             sender(frame(header_v2(18, 3, 4) + b"\xff\xff\xff\xff\x0f" + b"abc"
                          + b"\x041.0" + b"\x00")))
    run_case("malformed_huge_string_length",
             sender(frame(struct.pack(">hhih", 18, 0, 5, 0x7FFF) + b"abc")))
    run_case("malformed_unknown_api_key",
             sender(frame(header_v1(9999, 0, 7))), allow_response_corr=7)

    # And the broker still takes new connections.
    try:
        s = connect()
        why = apiversions_v0(s)
        s.close()
    except OSError as e:
        why = "cannot connect: %s" % e
    if why:
        fail("malformed_new_connection_after", why)
    else:
        ok("malformed_new_connection_after")
    return report.status()


if __name__ == "__main__":
    sys.exit(main())
