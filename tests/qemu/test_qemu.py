#!/usr/bin/env python3
"""tests/qemu/test_qemu.py - the appliance image boots and serves (testing ladder, step 5).

Run by `make test` and `make test-qemu` (tests/run.sh qemu), after `make
image-build` and build/qemu/poweroff.  No KVM here: every boot is emulated
(TCG), so the checks are few and every boot is bounded by a timeout.

  baseline   the same kernel and command line with an initramfs whose /init
             (tests/qemu/poweroff.c) only powers off: the boot-time reference,
             measured in this run
  direct     direct kernel boot of build/vmlinuz + build/initramfs, WAL on
             virtio-blk (a host file formatted by `sluice format`),
             configuration through fw_cfg; kcat on the host produces (acks=all)
             and consumes through the forwarded port; system_powerdown on the
             monitor must stop the guest (QEMU exits, no panic)
  reboot     the same WAL again: every acknowledged record reads back
  uefi       build/sluice.img through OVMF (UEFI, as EC2 boots it), on NVMe:
             the broker answers
  badconfig  an unknown key in the configuration: the error, naming the key,
             shows on the console and the machine powers off by itself

Prints the boot times (QEMU start to the Kafka port answering ApiVersions,
beside the baseline's QEMU start to its /init running) and the image size.

Until PID 1 support is in the tree (kernel/init.c), build/sluice run as /init
only prints its usage and exits: then the direct and UEFI boots are checked
for exactly that (the kernel handed over to /init), and the checks that need
the broker running are reported as skipped.
"""
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "image"))
import vm  # noqa: E402

B = os.path.join(TOP, os.environ.get("B", "build"))
WORK = os.path.join(B, "qemu", "test")
SLUICE = os.path.join(B, "sluice")
RECORDS = 300
TOPIC = "qemu-test"

BOOT_TIMEOUT = 150      # direct kernel boot to the Kafka port answering
UEFI_TIMEOUT = 240      # OVMF alone costs several seconds under TCG
STOP_TIMEOUT = 90       # power button to QEMU's exit
BASELINE_TIMEOUT = 60

failures = 0


def ok(name):
    print("ok %s" % name, flush=True)


def fail(name, why, m=None):
    global failures
    failures += 1
    print("FAIL %s: %s" % (name, why), flush=True)
    if m is not None:
        tail = m.console_text()[-3000:]
        print("---- console of %s (last 3000 characters)\n%s\n----" % (name, tail), flush=True)


def skip(name, why):
    print("skip %s: %s" % (name, why), flush=True)


def cmdline():
    with open(os.path.join(B, "cmdline")) as f:
        return f.read().strip()


def write_config(path, port, extra=""):
    with open(path, "w") as f:
        f.write("# written by tests/qemu/test_qemu.py\n"
                "listeners=PLAINTEXT://0.0.0.0:9092\n"
                "advertised.listeners=PLAINTEXT://127.0.0.1:%d\n"
                "sluice.wal.device=/dev/vda\n"
                "sluice.cache.bytes=33554432\n"
                "group.initial.rebalance.delay.ms=0\n" % port + extra)


def format_wal(config, wal, size=64 << 20):
    if os.path.exists(wal):
        os.unlink(wal)
    r = subprocess.run([SLUICE, "format", "--config", config, "--set", "sluice.wal.device=" + wal,
                        "--set", "sluice.wal.capacity.bytes=%d" % size],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("sluice format failed: %s" % r.stdout.decode(errors="replace"))


def direct_vm(name, config, wal, port):
    return vm.VM(os.path.join(WORK, name), kernel=os.path.join(B, "vmlinuz"),
                 initrd=os.path.join(B, "initramfs"), append=cmdline(), wal=wal, config=config,
                 kafka_port=port, restrict=True, console=os.path.join(WORK, name + ".console"))


def wait_answer(m, port, timeout):
    """Seconds from QEMU's start to the broker answering, or None."""
    while m.elapsed() < timeout:
        if vm.kafka_answers(port, timeout=1.0):
            return m.elapsed()
        if m.proc.poll() is not None:
            return None
        time.sleep(0.2)
    return None


def wait_console(m, pattern, timeout):
    """Seconds from QEMU's start to pattern on the console, or None."""
    while m.elapsed() < timeout:
        if re.search(pattern, m.console_text()):
            return m.elapsed()
        if m.proc.poll() is not None:
            return m.elapsed() if re.search(pattern, m.console_text()) else None
        time.sleep(0.05)
    return None


def stop(m, name):
    """Press the power button; True if the guest powered off cleanly in time."""
    if not m.powerdown():
        fail(name, "the QEMU monitor did not take system_powerdown", m)
        m.kill()
        return False
    status = m.wait(STOP_TIMEOUT)
    if status is None:
        fail(name, "still running %d s after system_powerdown" % STOP_TIMEOUT, m)
        m.kill()
        return False
    if "Kernel panic" in m.console_text():
        fail(name, "the kernel panicked on the way down", m)
        return False
    if status != 0:
        fail(name, "QEMU exited with status %d" % status, m)
        return False
    return True


def kcat(args, stdin=None, timeout=120):
    return subprocess.run(["kcat"] + args, input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout)


def produce(port):
    lines = "".join("k%04d:v%04d-%s\n" % (i, i, "x" * (i % 50)) for i in range(RECORDS))
    r = kcat(["-P", "-b", "127.0.0.1:%d" % port, "-t", TOPIC, "-p", "0", "-K", ":",
              "-X", "acks=all", "-X", "message.timeout.ms=60000"], stdin=lines.encode())
    err = r.stderr.decode(errors="replace")
    if r.returncode != 0 or re.search(r"(?i)delivery failed|error", err):
        return None, "kcat -P exited %d: %s" % (r.returncode, err.strip()[-500:])
    return lines.splitlines(), None


def consume(port, expect):
    r = kcat(["-C", "-b", "127.0.0.1:%d" % port, "-t", TOPIC, "-p", "0", "-o", "beginning",
              "-c", str(expect), "-e", "-f", "%k:%s\n", "-X", "fetch.wait.max.ms=100"])
    return r.stdout.decode(errors="replace").splitlines(), r


def has_pid1():
    return os.path.exists(os.path.join(TOP, "kernel", "init.c"))


def baseline():
    """Boot times of the power-off-only initramfs: (to /init, to exit), or None."""
    name = "baseline boot (power-off-only /init)"
    init = os.path.join(B, "qemu", "poweroff")
    initrd = os.path.join(WORK, "poweroff.initramfs")
    subprocess.run([sys.executable, os.path.join(TOP, "image", "initramfs.py"), "--init", init,
                    "--out", initrd], check=True)
    m = vm.VM(os.path.join(WORK, "baseline"), kernel=os.path.join(B, "vmlinuz"), initrd=initrd,
              append=cmdline(), console=os.path.join(WORK, "baseline.console")).start()
    try:
        t_init = wait_console(m, r"poweroff-init: running", BASELINE_TIMEOUT)
        status = m.wait(max(1, BASELINE_TIMEOUT - m.elapsed()))
        t_exit = m.elapsed()
        if t_init is None or status != 0:
            fail(name, "no power-off within %d s (status %s)" % (BASELINE_TIMEOUT, status), m)
            return None
        ok("%s: /init ran %.2f s after QEMU started, powered off at %.2f s" % (name, t_init, t_exit))
        return t_init, t_exit
    finally:
        m.kill()


def handover_only(uefi):
    """Without PID 1 support: the kernel runs build/sluice as /init (it prints its usage)."""
    what = "UEFI boot of sluice.img" if uefi else "direct kernel boot"
    name = "%s reaches /init" % what
    tag = "uefi" if uefi else "direct"
    if uefi:
        m = vm.VM(os.path.join(WORK, tag), uefi_disk=os.path.join(B, "sluice.img"),
                  console=os.path.join(WORK, tag + ".console"))
    else:
        m = vm.VM(os.path.join(WORK, tag), kernel=os.path.join(B, "vmlinuz"),
                  initrd=os.path.join(B, "initramfs"), append=cmdline(),
                  console=os.path.join(WORK, tag + ".console"))
    m.start()
    try:
        t = wait_console(m, r"usage: sluice serve", UEFI_TIMEOUT if uefi else BOOT_TIMEOUT)
        if t is None:
            fail(name, "build/sluice never ran as /init", m)
            return None
        ok("%s: build/sluice ran as /init %.2f s after QEMU started" % (name, t))
        return t
    finally:
        m.kill()


def full(port):
    """The checks that need the broker running as PID 1.  Returns boot times."""
    times = {}
    cfg = os.path.join(WORK, "sluice.properties")
    wal = os.path.join(WORK, "wal.img")
    write_config(cfg, port)
    format_wal(cfg, wal)

    # Direct kernel boot, produce and consume, power button.
    name = "direct boot: broker answers on the forwarded port"
    m = direct_vm("direct", cfg, wal, port).start()
    acked = None
    try:
        t = wait_answer(m, port, BOOT_TIMEOUT)
        if t is None:
            fail(name, "no ApiVersions answer within %d s" % BOOT_TIMEOUT, m)
            return times
        times["direct"] = t
        ok("%s (%.2f s)" % (name, t))

        name = "kcat produces %d records (acks=all) and consumes them" % RECORDS
        acked, why = produce(port)
        if acked is None:
            fail(name, why, m)
        else:
            got, r = consume(port, len(acked))
            if got != acked:
                fail(name, "read %d records back, %d matching; kcat: %s" % (
                    len(got), sum(1 for a, b in zip(got, acked) if a == b),
                    r.stderr.decode(errors="replace").strip()[-300:]), m)
            else:
                ok(name)

        name = "system_powerdown stops the broker and powers off"
        if stop(m, name):
            ok(name)
    finally:
        m.kill()

    # The same WAL again: everything acknowledged is there.
    name = "second boot on the same WAL reads back every acknowledged record"
    if acked:
        m = direct_vm("reboot", cfg, wal, port).start()
        try:
            t = wait_answer(m, port, BOOT_TIMEOUT)
            if t is None:
                fail(name, "no ApiVersions answer within %d s" % BOOT_TIMEOUT, m)
            else:
                got, r = consume(port, len(acked))
                missing = [a for a in acked if a not in set(got)]
                if got != acked:
                    fail(name, "%d of %d acknowledged records missing, %d read" % (
                        len(missing), len(acked), len(got)), m)
                else:
                    ok("%s (%d records, boot %.2f s)" % (name, len(acked), t))
                stop(m, name + " (stop)")
        finally:
            m.kill()
    else:
        fail(name, "nothing was acknowledged in the first boot")

    # UEFI: the disk EC2 would boot.
    name = "UEFI boot of sluice.img (OVMF, NVMe): broker answers"
    m = vm.VM(os.path.join(WORK, "uefi"), uefi_disk=os.path.join(B, "sluice.img"), wal=wal,
              config=cfg, kafka_port=port, restrict=True,
              console=os.path.join(WORK, "uefi.console")).start()
    try:
        t = wait_answer(m, port, UEFI_TIMEOUT)
        if t is None:
            fail(name, "no ApiVersions answer within %d s" % UEFI_TIMEOUT, m)
        else:
            times["uefi"] = t
            ok("%s (%.2f s)" % (name, t))
            stop(m, name + " (stop)")
    finally:
        m.kill()

    # Bad configuration: the error on the console, then power off.
    name = "bad configuration: error on the console, machine powers off"
    bad = os.path.join(WORK, "bad.properties")
    write_config(bad, port, "sluice.no.such.key=1\n")
    m = direct_vm("badconfig", bad, wal, port).start()
    try:
        status = m.wait(BOOT_TIMEOUT)
        text = m.console_text()
        if status is None:
            fail(name, "still running after %d s" % BOOT_TIMEOUT, m)
        elif "Kernel panic" in text:
            fail(name, "the kernel panicked (PID 1 exited?) instead of powering off", m)
        elif "sluice.no.such.key" not in text:
            fail(name, "the console does not name the bad key", m)
        elif status != 0:
            fail(name, "QEMU exited with status %d" % status, m)
        else:
            ok(name)
    finally:
        m.kill()
    return times


def main():
    for f in ("vmlinuz", "initramfs", "cmdline", "sluice.img", "sluice", "qemu/poweroff"):
        if not os.path.exists(os.path.join(B, f)):
            fail("qemu setup", "%s/%s is missing (make image-build %s/qemu/poweroff)" % (B, f, B))
            return 1
    for tool in ("qemu-system-x86_64", "kcat"):
        if not shutil.which(tool):
            fail("qemu setup", "%s is not installed (make deps)" % tool)
            return 1
    if os.path.exists(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    port = vm.free_port()

    base = baseline()
    if has_pid1():
        times = full(port)
    else:
        why = "kernel/init.c is not in this tree: build/sluice cannot run as PID 1 yet"
        times = {}
        t = handover_only(False)
        if t is not None:
            times["direct /init"] = t
        t = handover_only(True)
        if t is not None:
            times["uefi /init"] = t
        for name in ("kcat produce/consume", "system_powerdown", "second boot on the same WAL",
                     "UEFI boot: broker answers", "bad configuration"):
            skip(name, why)

    size = os.path.getsize(os.path.join(B, "sluice.img"))
    parts = ", ".join("%s %.2f s" % (k, v) for k, v in times.items())
    if base:
        parts += "; power-off-only /init: /init %.2f s, off %.2f s" % base
    print("boot times (TCG, from QEMU's start): %s" % parts)
    print("image: sluice.img %d bytes, sluice.efi %d, vmlinuz %d, initramfs %d" % (
        size, os.path.getsize(os.path.join(B, "sluice.efi")),
        os.path.getsize(os.path.join(B, "vmlinuz")), os.path.getsize(os.path.join(B, "initramfs"))))
    if base and ("direct" in times or "direct /init" in times):
        label = "direct" if "direct" in times else "direct /init"
        ok("boot time: sluice %.2f s to %s vs %.2f s for a power-off-only /init, same kernel and run; "
           "sluice.img %d bytes" % (times[label], "the Kafka port answering" if label == "direct"
                                    else "/init", base[0], size))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
