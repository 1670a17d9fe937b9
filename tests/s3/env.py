#!/usr/bin/python3
"""env.py - a throwaway S3 for one test: s3rver behind the signature proxy.

    test ──HTTP or HTTPS──▶ [faultserver] ──▶ sigproxy ──HTTP──▶ s3rver
                             (optional)       checks SigV4        one bucket,
                                                                  files in a
                                                                  temp dir

S3Env.start() makes a fresh directory build/test-data/s3-NAME-XXXX/ holding
the test certificates (certs.sh) and s3rver's files, starts s3rver on a free
port of 127.0.0.1 with the bucket already made, starts sigproxy in front of
it (HTTPS with certs/server.pem when https=True), optionally a fault server
in front of the proxy, and waits until a signed HEAD of the bucket through
the proxy answers 200.  stop() (also at exit, and from `with`) stops them all
and removes the directory (kept with keep=True).  Logs stay in
build/test-logs/: s3-NAME-s3rver.log, s3-NAME-sigproxy.log (one line per
request; rejections start with "REJECT"), s3-NAME-fault.log.

Every child is started with PR_SET_PDEATHSIG, so it dies with the process
(strictly: the thread) that started it even if that one is SIGKILLed.

From Python:
    from env import S3Env            # with tests/s3 on sys.path
    with S3Env("mytest", https=True) as s3:
        s3.endpoint, s3.bucket, s3.region, s3.access_key, s3.secret_key,
        s3.ca_file, s3.environ(), s3.boto3(), s3.add_proxy("wrong-name"), ...

From a shell or for a program in any language (the variables of environ()):
    env.py run [OPTIONS] -- COMMAND [ARG...]   runs COMMAND with S3_* set
    env.py start [OPTIONS] --state DIR         starts in the background and
                                               prints "export S3_...=..." lines
    env.py stop --state DIR                    stops what start started
OPTIONS: --https --name NAME --bucket NAME --fault SCRIPT --fault-default
ACTION --bad-certs --token TOKEN --keep.  `run` exits with COMMAND's status
(or 125 if the environment did not start).
"""

import argparse
import ctypes
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from sigproxy import ACCESS_KEY, REGION, SECRET_KEY  # noqa: E402

TOP = os.path.dirname(os.path.dirname(HERE))
LOGS = os.path.join(TOP, "build", "test-logs")
DATA = os.path.join(TOP, "build", "test-data")
PYTHON = "/usr/bin/python3"
S3RVER = os.path.join(TOP, "node_modules", "s3rver", "bin", "s3rver.js")
START_TIMEOUT = 30


class EnvError(Exception):
    pass


def _die_with_parent():
    """preexec_fn: SIGKILL this child when the thread that forked it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


def _tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


# ---------------------------------------------------------------- signed requests

def sign(method, url, headers=None, body=b"", access_key=ACCESS_KEY, secret_key=SECRET_KEY,
         region=REGION, token=None, payload=None):
    """The headers of a request signed with botocore (SigV4, S3 flavour):
    the given ones plus Host, X-Amz-Date, X-Amz-Content-SHA256 and
    Authorization.  payload: None hashes the body, or a literal such as
    "UNSIGNED-PAYLOAD".  The host is taken from url (give headers["Host"]
    to sign another, e.g. for a virtual-hosted request)."""
    import hashlib

    from botocore.auth import S3SigV4Auth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    hdrs = dict(headers or {})
    if not any(k.lower() == "host" for k in hdrs):
        u = urllib.parse.urlsplit(url)
        default = {"http": 80, "https": 443}.get(u.scheme)
        hdrs["Host"] = u.hostname + (":%d" % u.port if u.port and u.port != default else "")
    hdrs["X-Amz-Content-SHA256"] = payload or hashlib.sha256(body).hexdigest()
    req = AWSRequest(method=method, url=url, headers=hdrs, data=body)

    class Signer(S3SigV4Auth):   # keeps the caller's X-Amz-Content-SHA256
        def _modify_request_before_signing(self, request):
            SigV4Auth._modify_request_before_signing(self, request)

    Signer(Credentials(access_key, secret_key, token), "s3", region).add_auth(req)
    return dict(req.headers.items())


def send(url, method="GET", headers=None, body=b"", ca_file=None, timeout=60, conn=None):
    """One raw request with http.client; returns (status, {lowercase header:
    value}, body).  The Host header, if given, is sent as is; the connection
    goes to url's host and port.  conn: an open connection to reuse."""
    u = urllib.parse.urlsplit(url)
    own = conn is None
    if own:
        conn = connect(url, ca_file, timeout)
    try:
        target = (u.path or "/") + ("?" + u.query if u.query else "")
        hdrs = dict(headers or {})
        skip_host = any(k.lower() == "host" for k in hdrs)
        conn.putrequest(method, target, skip_host=skip_host, skip_accept_encoding=True)
        for k, v in hdrs.items():
            conn.putheader(k, v)
        if body or method in ("PUT", "POST"):
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        if own:
            conn.close()


def connect(url, ca_file=None, timeout=60):
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=ca_file)
        return http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=ctx)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


# ---------------------------------------------------------------- the environment

class S3Env:
    def __init__(self, name=None, https=False, bucket="sluice-test", fault=None,
                 fault_default=None, bad_certs=False, access_key=ACCESS_KEY,
                 secret_key=SECRET_KEY, region=REGION, token=None, keep=False):
        if name is None:
            name = os.path.splitext(os.path.basename(sys.argv[0] or "s3"))[0] or "s3"
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        self.https = https
        self.bucket = bucket
        self.fault_script = fault
        self.fault_default = fault_default
        self.bad_certs = bad_certs
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.token = token
        self.keep = keep
        self.procs = []           # (label, Popen), in start order
        self.logs = {}
        self.data_dir = None
        self.endpoint = None
        self.fault_url = None
        self.wrong_name_url = None
        self.untrusted_url = None
        self.backend_url = None
        self._started = False
        self._stopped = False

    # -- lifecycle

    def start(self):
        """Start everything (once: a second call does nothing)."""
        import atexit
        if self._started:
            return self
        self._started = True
        atexit.register(self.stop)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self):
        os.makedirs(LOGS, exist_ok=True)
        os.makedirs(DATA, exist_ok=True)
        self.data_dir = tempfile.mkdtemp(prefix="s3-%s-" % self.name, dir=DATA)
        self.certs_dir = os.path.join(self.data_dir, "certs")
        r = subprocess.run(["sh", os.path.join(HERE, "certs.sh"), self.certs_dir,
                            "%s.localhost" % self.bucket], capture_output=True, text=True)
        if r.returncode != 0:
            raise EnvError("certs.sh failed: %s" % r.stderr.strip())
        self.ca_file = os.path.join(self.certs_dir, "ca.pem")

        objects = os.path.join(self.data_dir, "objects")
        os.makedirs(objects)
        log = self._log("s3rver")
        # s3rver makes ListObjectsV2 continuation tokens with DES, which
        # Node's OpenSSL 3 has only in its legacy provider.
        p = self._spawn("s3rver", ["node", "--openssl-legacy-provider", S3RVER, "-d", objects, "-a", "127.0.0.1", "-p", "0",
                                   "--configure-bucket", self.bucket], log)
        port = self._wait_for(p, "s3rver", log,
                              lambda: _match_port(log, r"S3rver listening on [^:]+:(\d+)"))
        self.backend_url = "http://127.0.0.1:%d" % port

        self.endpoint = self._proxy("sigproxy", "server" if self.https else None)
        if self.bad_certs:
            self.wrong_name_url = self.add_proxy("wrong-name")
            self.untrusted_url = self.add_proxy("untrusted")
        self._wait_answers()
        if self.fault_script is not None:
            log = self._log("fault")
            ready = os.path.join(self.data_dir, "fault.ready")
            argv = [PYTHON, os.path.join(HERE, "faultserver.py"), "--upstream", self.endpoint,
                    "--upstream-ca", self.ca_file, "--ready-file", ready,
                    "--script", self.fault_script if isinstance(self.fault_script, str)
                    else json.dumps(self.fault_script)]
            if self.fault_default:
                argv += ["--default", self.fault_default]
            if self.https:
                argv += ["--cert", self._cert("server")[0], "--key", self._cert("server")[1]]
            p = self._spawn("fault", argv, log)
            self.fault_url = self._wait_for(p, "faultserver", log, lambda: _ready_url(ready))

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        for label, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 5
        for label, p in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if self.data_dir and not self.keep:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- helpers for tests

    def add_proxy(self, cert="wrong-name"):
        """Another signature proxy in front of the same s3rver; cert is one
        of certs.sh's server certificates ("server", "wrong-name",
        "untrusted") for HTTPS, or None for HTTP.  Returns its URL."""
        return self._proxy("proxy-%s" % (cert or "http"), cert)

    def fault(self):
        """The fault server's control (a faultserver.FaultControl)."""
        from faultserver import FaultControl
        if not self.fault_url:
            raise EnvError("this environment has no fault server (fault=None)")
        return FaultControl(self.fault_url, self.ca_file)

    def boto3(self, endpoint=None, secret_key=None, attempts=1, **config):
        """A boto3 S3 client for this environment (path-style, SigV4); it
        makes `attempts` attempts in all (by default 1: no retries)."""
        import boto3
        from botocore.config import Config
        cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                     retries={"mode": "standard", "total_max_attempts": attempts},
                     connect_timeout=10, read_timeout=60, **config)
        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint or self.endpoint, region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            aws_session_token=self.token,
            verify=self.ca_file if (endpoint or self.endpoint).startswith("https") else None,
            config=cfg)

    def sign(self, method, url, headers=None, body=b"", **kw):
        kw.setdefault("access_key", self.access_key)
        kw.setdefault("secret_key", self.secret_key)
        kw.setdefault("region", self.region)
        kw.setdefault("token", self.token)
        return sign(method, url, headers, body, **kw)

    def send(self, url, method="GET", headers=None, body=b"", **kw):
        kw.setdefault("ca_file", self.ca_file)
        return send(url, method, headers, body, **kw)

    def environ(self):
        """The S3_* variables describing this environment."""
        q = urllib.parse.urlencode({"region": self.region, "endpoint": self.endpoint,
                                    "path_style": "true"})
        env = {
            "S3_ENDPOINT": self.endpoint,
            "S3_BUCKET": self.bucket,
            "S3_REGION": self.region,
            "S3_ACCESS_KEY": self.access_key,
            "S3_SECRET_KEY": self.secret_key,
            "S3_CA_FILE": self.ca_file,
            "S3_CERTS_DIR": self.certs_dir,
            "S3_OBJECTS_URL": "s3://%s?%s" % (self.bucket, q),
            "S3_BACKEND_URL": self.backend_url,
            "S3_PROXY_LOG": self.logs["sigproxy"],
            "S3_S3RVER_LOG": self.logs["s3rver"],
        }
        if self.token:
            env["S3_SESSION_TOKEN"] = self.token
        if self.fault_url:
            env["S3_FAULT_URL"] = self.fault_url
            env["S3_FAULT_LOG"] = self.logs["fault"]
        if self.wrong_name_url:
            env["S3_WRONG_NAME_URL"] = self.wrong_name_url
            env["S3_UNTRUSTED_URL"] = self.untrusted_url
        return env

    # -- internals

    def _log(self, label):
        path = os.path.join(LOGS, "s3-%s-%s.log" % (self.name, label))
        open(path, "w").close()
        self.logs[label] = path
        return path

    def _spawn(self, label, argv, log):
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                 cwd=TOP, preexec_fn=_die_with_parent,
                                 env=dict(os.environ, NO_COLOR="1", FORCE_COLOR="0"))
        self.procs.append((label, p))
        return p

    def _wait_for(self, p, what, log, probe):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            v = probe()
            if v:
                return v
            if p.poll() is not None:
                raise EnvError("%s exited with status %s before it was ready; %s ends:\n%s"
                               % (what, p.returncode, log, _tail(log)))
            time.sleep(0.05)
        raise EnvError("%s not ready within %d s; %s ends:\n%s"
                       % (what, START_TIMEOUT, log, _tail(log)))

    def _cert(self, which):
        return (os.path.join(self.certs_dir, which + ".pem"),
                os.path.join(self.certs_dir, which + ".key"))

    def _proxy(self, label, cert):
        log = self._log(label)
        ready = os.path.join(self.data_dir, label + ".ready")
        argv = [PYTHON, os.path.join(HERE, "sigproxy.py"), "--upstream", self.backend_url,
                "--access-key", self.access_key, "--secret-key", self.secret_key,
                "--region", self.region, "--ready-file", ready]
        if self.token:
            argv += ["--token", self.token]
        if cert:
            pem, key = self._cert(cert)
            argv += ["--cert", pem, "--key", key]
        p = self._spawn(label, argv, log)
        return self._wait_for(p, label, log, lambda: _ready_url(ready))

    def _wait_answers(self):
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            url = "%s/%s" % (self.endpoint, self.bucket)
            try:
                status, _, body = self.send(url, "HEAD", self.sign("HEAD", url), timeout=5)
                if status == 200:
                    return
                last = "HEAD %s answered %d" % (url, status)
            except OSError as e:
                last = "HEAD %s: %s" % (url, e)
            time.sleep(0.1)
        raise EnvError("the proxy did not answer within %d s (%s); see %s and %s"
                       % (START_TIMEOUT, last, self.logs["sigproxy"], self.logs["s3rver"]))


def _match_port(path, pattern):
    try:
        with open(path, errors="replace") as f:
            m = re.search(pattern, f.read())
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _ready_url(path):
    try:
        with open(path) as f:
            return json.load(f)["url"]
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- command line

def _options(p):
    p.add_argument("--https", action="store_true", help="serve HTTPS with the test CA's certificate")
    p.add_argument("--name", default="s3", help="names the logs: build/test-logs/s3-NAME-*.log")
    p.add_argument("--bucket", default="sluice-test")
    p.add_argument("--fault", help="start a fault server in front of the proxy with this script "
                   "('' for none queued)")
    p.add_argument("--fault-default", help="its action when none is queued (default pass)")
    p.add_argument("--bad-certs", action="store_true",
                   help="also serve the wrong-name and untrusted certificates (HTTPS)")
    p.add_argument("--token", help="a session token the requests must carry")
    p.add_argument("--keep", action="store_true", help="keep the data directory")


def _env_from(a):
    return S3Env(a.name, https=a.https, bucket=a.bucket, fault=a.fault,
                 fault_default=a.fault_default, bad_certs=a.bad_certs, token=a.token, keep=a.keep)


def _exports(env):
    return "".join("export %s=%s\n" % (k, shlex.quote(v)) for k, v in sorted(env.items()))


def _run(a):
    if not a.command:
        print("env.py run: no command after --", file=sys.stderr)
        return 2
    env = _env_from(a)
    child = None

    def on_signal(signum, frame):
        if child is not None and child.poll() is None:
            child.send_signal(signum)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        env.start()
    except EnvError as e:
        print("FAIL s3_env: %s" % e, flush=True)
        return 125
    try:
        print("# s3: %s (bucket %s, CA %s, logs build/test-logs/s3-%s-*.log)"
              % (env.endpoint, env.bucket, env.ca_file, env.name), flush=True)
        child = subprocess.Popen(a.command, env=dict(os.environ, **env.environ()))
        return child.wait()
    finally:
        if child is not None and child.poll() is None:
            child.terminate()
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
        env.stop()


def _serve(a):
    """The background process of `start`: owns the environment until SIGTERM
    or its lifetime ends."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    env = _env_from(a)
    out = os.path.join(a.state, "env.sh")
    try:
        env.start()
    except EnvError as e:
        with open(os.path.join(a.state, "error"), "w") as f:
            f.write(str(e))
        return 1
    vars_ = dict(env.environ(), S3_ENV_PID=str(os.getpid()))
    with open(out + ".tmp", "w") as f:
        f.write(_exports(vars_))
    os.rename(out + ".tmp", out)
    stop.wait(a.lifetime)
    env.stop()
    return 0


def _start(a):
    os.makedirs(a.state, exist_ok=True)
    for f in ("env.sh", "error", "pid"):
        try:
            os.unlink(os.path.join(a.state, f))
        except FileNotFoundError:
            pass
    os.makedirs(LOGS, exist_ok=True)
    log = os.path.join(LOGS, "s3-%s-env.log" % a.name)
    argv = [PYTHON, os.path.abspath(__file__), "serve", "--state", a.state,
            "--lifetime", str(a.lifetime)] + _passthrough(a)
    with open(log, "wb") as f:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=TOP)
    with open(os.path.join(a.state, "pid"), "w") as f:
        f.write("%d\n" % p.pid)
    deadline = time.monotonic() + 2 * START_TIMEOUT
    out = os.path.join(a.state, "env.sh")
    while time.monotonic() < deadline:
        if os.path.exists(out):
            with open(out) as f:
                sys.stdout.write(f.read())
            return 0
        if p.poll() is not None:
            why = _tail(os.path.join(a.state, "error")) or _tail(log)
            print("env.py start: the environment did not start: %s" % why, file=sys.stderr)
            return 1
        time.sleep(0.05)
    p.terminate()
    print("env.py start: not ready within %d s; see %s" % (2 * START_TIMEOUT, log), file=sys.stderr)
    return 1


def _stop(a):
    try:
        with open(os.path.join(a.state, "pid")) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return 0
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid = None
    deadline = time.monotonic() + 15
    while pid and time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        if pid:
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(a.state, ignore_errors=True)
    return 0


def _passthrough(a):
    out = []
    for flag in ("https", "bad_certs", "keep"):
        if getattr(a, flag):
            out.append("--" + flag.replace("_", "-"))
    for opt in ("name", "bucket", "fault", "fault_default", "token"):
        v = getattr(a, opt)
        if v is not None:
            out += ["--" + opt.replace("_", "-"), v]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="a throwaway S3 (s3rver + signature proxy) for tests")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a command with S3_* set")
    _options(r)
    r.add_argument("command", nargs=argparse.REMAINDER)
    s = sub.add_parser("start", help="start in the background; print export lines")
    _options(s)
    s.add_argument("--state", required=True, help="a directory for the pid and variables")
    s.add_argument("--lifetime", type=int, default=3600, help="stop by itself after this (s)")
    v = sub.add_parser("serve", help=argparse.SUPPRESS)
    _options(v)
    v.add_argument("--state", required=True)
    v.add_argument("--lifetime", type=int, default=3600)
    t = sub.add_parser("stop", help="stop what start started")
    t.add_argument("--state", required=True)
    a = p.parse_args(argv)
    if a.cmd == "run":
        if a.command and a.command[0] == "--":
            a.command = a.command[1:]
        return _run(a)
    return {"start": _start, "serve": _serve, "stop": _stop}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
