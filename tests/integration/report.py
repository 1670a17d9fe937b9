"""report.py - how integration tests report, in one place.

One line per case on stdout, which tests/run.sh counts: "ok NAME" or
"FAIL NAME: why".  Anything else a test prints starts with "# ".  A test
ends with `return report.status()` (1 if any case failed, else 0).
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
