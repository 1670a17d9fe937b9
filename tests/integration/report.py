"""report.py - how integration tests report, and how they end early, in
one place.

One line per case on stdout, which tests/run.sh counts: "ok NAME" or
"FAIL NAME: why".  Anything else a test prints starts with "# ".  A test
ends with `return report.status()` (1 if any case failed, else 0).  A test
that runs past its time (watchdog) or is stopped by a signal
(stop_on_signals) ends at once, after killing the processes it started
(kill_all).
"""

failures = 0


def ok(name):
    print("ok " + name, flush=True)


def fail(name, why):
    global failures
    failures += 1
    print("FAIL %s: %s" % (name, why), flush=True)


def note(text):
    for line in str(text).splitlines() or [""]:
        print("# " + line, flush=True)


def status():
    return 1 if failures else 0


def case(name, fn, *args):
    """Run one case: fn returns None to pass, a reason to fail, or
    ("", detail) to pass with a detail.  An exception fails the case with its
    message.  Returns whether the case passed."""
    import sys
    import traceback
    try:
        why = fn(*args)
    except Exception as e:  # noqa: BLE001 - any error fails the case
        traceback.print_exc(file=sys.stderr)
        why = "%s: %s" % (type(e).__name__, e)
    if isinstance(why, tuple):
        ok("%s (%s)" % (name, why[1]))
    elif why:
        fail(name, why)
    else:
        ok(name)
    return not why or isinstance(why, tuple)


def watchdog(name, seconds, before_exit=None):
    """End the test with "FAIL <name>_watchdog" if it runs past seconds."""
    import os
    import signal

    def expired(signum, frame):
        print("FAIL %s_watchdog: still running after %d s" % (name, seconds), flush=True)
        if before_exit:
            before_exit()
        os._exit(1)
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


def kill_all(procs):
    """SIGKILL every process of procs (subprocess.Popen) still running and
    reap it: best effort, for the way out."""
    for proc in procs:
        if proc.poll() is None:
            try:
                proc.kill()
                proc.wait(5)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass


def stop_on_signals(before_exit=None):
    """SIGTERM or SIGHUP (the harness's timeout, a hangup) end the test at
    once: "# stopped by signal N", before_exit(), exit status 1."""
    import os
    import signal

    def stopped(signum, frame):
        print("# stopped by signal %d" % signum, flush=True)
        if before_exit:
            before_exit()
        os._exit(1)
    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGHUP, stopped)


def rdkafka_logger(name, level=None):
    """A logger for a librdkafka client ("logger" in its config) whose
    lines are collected in handler.lines for the test to inspect."""
    import logging

    class Lines(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, rec):
            self.lines.append(rec.getMessage())

    handler = Lines()
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG if level is None else level)
    logger.propagate = False
    return logger, handler
