#!/usr/bin/env python3
"""image/run.py - `make run`: the appliance image under QEMU, S3 on the host.

    python3 image/run.py [--config FILE] [--port 9092] [--smp 2] [--mem 1024]

1. The WAL: build/run/wal.img (RUN_WAL_BYTES, default 1 GiB, sparse).  On
   first use it is formatted on the host by `build/sluice format` with the
   same configuration file (the cluster and node ids must match), and kept
   afterwards, so a second `make run` finds everything acknowledged before.
2. s3rver (node_modules) on 127.0.0.1:4568, data in build/run/s3/, bucket
   "sluice"; the guest reaches it as 10.0.2.2:4568 (the address in
   image/run.properties).
3. QEMU, direct kernel boot of build/vmlinuz, build/initramfs and
   build/cmdline; the configuration file through fw_cfg opt/sluice/config;
   the Kafka port forwarded from 127.0.0.1:<port>; the serial console here.
4. Ctrl-C (or SIGTERM) presses the guest's power button (system_powerdown on
   QEMU's monitor): the broker stops cleanly and powers the machine off.  A
   second Ctrl-C, or a guest still running after 60 s, ends QEMU at once.
"""
import argparse
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import vm  # noqa: E402

B = os.environ.get("B", "build")
S3_PORT = 4568


def say(msg):
    sys.stderr.write("run: %s\n" % msg)
    sys.stderr.flush()


def die(msg):
    say("error: " + msg)
    sys.exit(1)


def start_s3rver(rundir, port):
    data = os.path.join(rundir, "s3")
    os.makedirs(data, exist_ok=True)
    log = os.path.join(rundir, "s3rver.log")
    s3rver = os.path.join(TOP, "node_modules", "s3rver", "bin", "s3rver.js")
    if not os.path.exists(s3rver):
        die("%s is missing (make deps installs it)" % s3rver)
    with open(log, "wb") as f:
        # --openssl-legacy-provider: s3rver's list tokens use DES (tests/s3/env.py says more).
        p = subprocess.Popen(["node", "--openssl-legacy-provider", s3rver, "-d", data,
                              "-a", "127.0.0.1", "-p", str(port), "--configure-bucket", "sluice"],
                             stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            if re.search(rb"S3rver listening", f.read()):
                return p, log
        if p.poll() is not None:
            break
        time.sleep(0.1)
    p.kill()
    with open(log, "rb") as f:
        sys.stderr.write(f.read().decode("utf-8", "replace")[-2000:])
    die("s3rver did not start on 127.0.0.1:%d (log: %s)" % (port, log))


def main():
    ap = argparse.ArgumentParser(description="boot the appliance image under QEMU")
    ap.add_argument("--config", default=os.path.join(HERE, "run.properties"))
    ap.add_argument("--port", type=int, default=9092, help="host port forwarded to the guest's 9092")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--mem", type=int, default=1024, help="guest memory, MiB")
    a = ap.parse_args()

    for f in ("vmlinuz", "initramfs", "cmdline", "sluice"):
        if not os.path.exists(os.path.join(B, f)):
            die("%s/%s is missing: run `make image`" % (B, f))
    if not os.path.exists(a.config):
        die("no configuration file %s" % a.config)
    rundir = os.path.join(B, "run")
    os.makedirs(rundir, exist_ok=True)

    wal = os.path.join(rundir, "wal.img")
    if not os.path.exists(wal):
        size = int(os.environ.get("RUN_WAL_BYTES", str(1 << 30)))
        r = subprocess.run([os.path.join(B, "sluice"), "format", "--config", a.config,
                            "--set", "sluice.wal.device=" + wal,
                            "--set", "sluice.wal.capacity.bytes=%d" % size])
        if r.returncode != 0:
            die("could not format %s" % wal)

    config = a.config
    s3, s3log = start_s3rver(rundir, S3_PORT)
    with open(os.path.join(B, "cmdline")) as f:
        append = f.read().strip()
    m = vm.VM(os.path.join(rundir, "qemu"), kernel=os.path.join(B, "vmlinuz"),
              initrd=os.path.join(B, "initramfs"), append=append, wal=wal, config=config,
              kafka_port=a.port, smp=a.smp, mem_mib=a.mem)
    say("Kafka on 127.0.0.1:%d, S3 (s3rver) on 127.0.0.1:%d = 10.0.2.2:%d in the guest, "
        "WAL %s, configuration %s" % (a.port, S3_PORT, S3_PORT, wal, a.config))
    say("Ctrl-C powers the guest off")

    presses = []

    def on_signal(signum, frame):
        presses.append(time.monotonic())
        if len(presses) == 1:
            say("pressing the power button (system_powerdown)")
            if not m.powerdown():
                say("the monitor did not answer; stopping QEMU")
                m.kill()
        else:
            say("stopping QEMU at once")
            m.kill()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    status = None
    try:
        m.start()
        while status is None:
            status = m.wait(0.5)
            if status is None and presses and time.monotonic() - presses[0] > 60:
                say("the guest did not power off within 60 s; stopping QEMU")
                m.kill()
                status = m.proc.returncode
    finally:
        m.kill()
        s3.terminate()
        try:
            s3.wait(timeout=5)
        except subprocess.TimeoutExpired:
            s3.kill()
    say("QEMU exited with status %s (s3rver log: %s)" % (status, s3log))
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
