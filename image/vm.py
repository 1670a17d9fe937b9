"""image/vm.py - one QEMU machine running the appliance, for `make run` and tests/qemu.

The machine is what EC2 gives the image, as far as QEMU can:

    q35, SeaBIOS and direct kernel boot (-kernel/-initrd/-append), or OVMF
    booting build/sluice.img's ESP (UEFI, as EC2 does) with the disk on NVMe
    the WAL          a raw file on virtio-blk, serial "sluice-wal": /dev/vda in the guest
                     (the only virtio disk; the UEFI boot disk is NVMe, /dev/nvme0n1)
    the network      virtio-net on QEMU's user network: the guest gets 10.0.2.15 by
                     DHCP, reaches the host's 127.0.0.1 as 10.0.2.2, and the guest's
                     Kafka port 9092 is forwarded from 127.0.0.1:<kafka_port>
    configuration    fw_cfg file "opt/sluice/config": the properties file, verbatim
    entropy          virtio-rng
    console          the first serial port (ttyS0): to a file, or to our stdout
    monitor          QEMU's human monitor on a UNIX socket, for system_powerdown

No display, no default devices (-nodefaults), no option ROMs: fewer things to
emulate under TCG.  QEMU runs in its own session with stdin from /dev/null,
so Ctrl-C in the terminal reaches only the Python process driving it, which
then asks the guest to power off (the guest's clean stop) instead of QEMU
quitting under it.
"""
import os
import socket
import subprocess
import time

OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
GUEST_KAFKA_PORT = 9092
FW_CFG_NAME = "opt/sluice/config"


class VM:
    def __init__(self, workdir, *, kernel=None, initrd=None, append=None, uefi_disk=None,
                 wal=None, config=None, kafka_port=None, restrict=False, console=None,
                 smp=1, mem_mib=1024):
        """Direct kernel boot when kernel is given, else UEFI from uefi_disk.
        console: a file path for the serial output, or None for our stdout."""
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.monitor_path = os.path.join(workdir, "monitor.sock")
        self.console = console
        self.proc = None
        self.started = None
        a = ["qemu-system-x86_64", "-machine", "q35", "-smp", str(smp), "-m", str(mem_mib),
             "-nodefaults", "-display", "none", "-no-reboot",
             "-serial", "stdio",
             "-monitor", "unix:%s,server=on,wait=off" % self.monitor_path,
             "-device", "virtio-rng-pci"]
        if kernel:
            a += ["-kernel", kernel, "-initrd", initrd, "-append", append]
        else:
            vars_copy = os.path.join(workdir, "ovmf-vars.fd")
            with open(OVMF_VARS, "rb") as src, open(vars_copy, "wb") as dst:
                dst.write(src.read())
            a += ["-drive", "if=pflash,format=raw,unit=0,readonly=on,file=%s" % OVMF_CODE,
                  "-drive", "if=pflash,format=raw,unit=1,file=%s" % vars_copy,
                  "-drive", "if=none,id=boot,format=raw,readonly=on,file=%s" % uefi_disk,
                  "-device", "nvme,drive=boot,serial=sluice-boot"]
        if wal:
            a += ["-drive", "if=none,id=wal,format=raw,file=%s" % wal,
                  "-device", "virtio-blk-pci,drive=wal,serial=sluice-wal"]
        if config:
            a += ["-fw_cfg", "name=%s,file=%s" % (FW_CFG_NAME, config)]
        if kafka_port:
            net = "user,id=n0,hostfwd=tcp:127.0.0.1:%d-:%d" % (kafka_port, GUEST_KAFKA_PORT)
            if restrict:
                # The guest reaches nothing outside QEMU (DHCP and the forward still work).
                net += ",restrict=on"
            a += ["-netdev", net, "-device", "virtio-net-pci,netdev=n0,romfile="]
        self.argv = a

    def start(self):
        if os.path.exists(self.monitor_path):
            os.unlink(self.monitor_path)
        out = open(self.console, "wb") if self.console else None
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT if out else None,
                                     start_new_session=True)
        if out:
            out.close()
        return self

    def elapsed(self):
        return time.monotonic() - self.started

    def console_text(self):
        if not self.console or not os.path.exists(self.console):
            return ""
        with open(self.console, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def monitor(self, command, timeout=5.0):
        """Send one human-monitor command; True if it was delivered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(2.0)
                    s.connect(self.monitor_path)
                    s.sendall(command.encode() + b"\n")
                    # Read the echo so the command is taken before we hang up.
                    got = b""
                    while command.encode() not in got:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                    return True
            except OSError:
                if self.proc.poll() is not None:
                    return False
                time.sleep(0.1)
        return False

    def powerdown(self):
        """The ACPI power button: the guest's cue for a clean stop and power off."""
        return self.monitor("system_powerdown")

    def wait(self, timeout):
        """QEMU's exit status, or None if it is still running after timeout seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kafka_answers(port, timeout=1.0):
    """True if a Kafka broker answers ApiVersions v0 on 127.0.0.1:port.

    A TCP connect alone proves nothing here: QEMU's user network accepts on
    the host side before it knows whether the guest listens."""
    req = (b"\x00\x12" b"\x00\x00" b"\x00\x00\x00\x01"  # ApiVersions v0, correlation id 1
           b"\x00\x09" b"boot-wait")                    # client id
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(len(req).to_bytes(4, "big") + req)
            head = b""
            while len(head) < 8:
                chunk = s.recv(8 - len(head))
                if not chunk:
                    return False
                head += chunk
            return int.from_bytes(head[4:8], "big") == 1
    except OSError:
        return False
