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
