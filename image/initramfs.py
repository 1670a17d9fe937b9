#!/usr/bin/env python3
"""image/initramfs.py - the appliance's initramfs: one binary and a few modules.

    initramfs.py --init BIN --out FILE [--modules-dir DIR --modules LIST] [--list]

Writes a gzip-compressed "newc" cpio archive (the format the kernel unpacks
into its rootfs, Documentation/driver-api/early-userspace/buffer-format.rst)
holding:

    /init                       BIN, mode 0755 (the kernel runs it as PID 1)
    /dev/console                character device 5:1, mode 0600
    /dev /proc /sys /tmp /run /etc    empty directories, mount points for PID 1
    /lib/modules/NAME.ko        each module named in LIST, with every module
                                it depends on, decompressed if it was .xz/.zst/.gz
    /lib/modules/load-order     absolute paths of those modules, one a line,
                                dependencies before the modules that need them

/lib/modules/load-order is the contract with PID 1: it loads each line in
order with finit_module() and needs nothing else (no modules.dep, no aliases).
A module that finds no device (ena under QEMU, virtio under EC2's Nitro)
still loads: it registers its driver and waits.

Why our own cpio writer: records are plain headers, so a device node and exact
modes and owners (root) can be written without being root, and mtimes fixed
at 0 make the archive the same bytes for the same inputs.

Dependencies come from each module's .modinfo section ("depends=a,b", which
the kernel build's modpost computes from the symbols a module uses: the same
facts depmod writes to modules.dep, which Debian's package does not ship
because depmod runs on installation).  Module names treat '-' and '_' alike,
as the kernel does.  A missing module, a missing dependency or a cycle is an
error.
"""
import argparse
import gzip
import io
import lzma
import os
import struct
import subprocess
import sys


def die(msg):
    sys.stderr.write("initramfs: error: %s\n" % msg)
    sys.exit(1)


def norm(name):
    return name.replace("-", "_")


def module_name(filename):
    base = os.path.basename(filename)
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(ext):
            return norm(base[: -len(ext)])
    return None


def decompress(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        return lzma.decompress(data)
    if path.endswith(".gz"):
        return gzip.decompress(data)
    if path.endswith(".zst"):
        # Python's standard library has no zstd before 3.14: the zstd tool does it.
        p = subprocess.run(["zstd", "-dcq", path], stdout=subprocess.PIPE, check=False)
        if p.returncode != 0:
            die("zstd -d %s failed" % path)
        return p.stdout
    return data


def elf_section(data, wanted):
    """Bytes of section `wanted` of a 64-bit little-endian ELF file, or None."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    if shoff == 0 or shentsize < 64 or shoff + shnum * shentsize > len(data):
        return None

    def header(i):
        # name, type, flags, addr, offset, size
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)

    _, _, _, _, stroff, strsize = header(shstrndx)
    names = data[stroff: stroff + strsize]
    for i in range(shnum):
        name, _, _, _, off, size = header(i)
        end = names.find(b"\0", name)
        if names[name:end] == wanted.encode():
            return data[off: off + size]
    return None


def depends(data, name):
    info = elf_section(data, ".modinfo")
    if info is None:
        die("module %s has no .modinfo section (not a kernel module?)" % name)
    for field in info.split(b"\0"):
        if field.startswith(b"depends="):
            value = field[len(b"depends="):].decode()
            return [norm(d) for d in value.split(",") if d]
    return []


def resolve(modules_dir, wanted):
    """Modules in load order (dependencies first): list of (name, bytes)."""
    files = {}
    for root, _, names in os.walk(modules_dir):
        for n in names:
            m = module_name(n)
            if m:
                files[m] = os.path.join(root, n)
    order, state, blobs = [], {}, {}

    def visit(name, chain):
        if state.get(name) == "done":
            return
        if state.get(name) == "visiting":
            die("dependency cycle: %s" % " -> ".join(chain + [name]))
        if name not in files:
            if chain:
                die("module %s (needed by %s) is not in %s" % (name, chain[-1], modules_dir))
            die("module %s is not in %s" % (name, modules_dir))
        state[name] = "visiting"
        blobs[name] = decompress(files[name])
        for dep in depends(blobs[name], name):
            visit(dep, chain + [name])
        state[name] = "done"
        order.append(name)

    for w in wanted:
        visit(norm(w), [])
    return [(n, blobs[n]) for n in order]


class Cpio:
    """A newc ("070701") archive written to a byte stream, owner root, mtime 0."""

    def __init__(self):
        self.out = io.BytesIO()
        self.ino = 1

    def _pad(self):
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        fields = (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name) + 1, 0)
        self.ino += 1
        self.out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        self.out.write(name.encode() + b"\0")
        self._pad()
        self.out.write(data)
        self._pad()

    def dir(self, name, perm=0o755):
        self.entry(name, 0o040000 | perm, nlink=2)

    def file(self, name, data, perm=0o644):
        self.entry(name, 0o100000 | perm, data)

    def chardev(self, name, major, minor, perm=0o600):
        self.entry(name, 0o020000 | perm, rdev=(major, minor))

    def finish(self):
        self.ino = 0
        self.entry("TRAILER!!!", 0)
        return self.out.getvalue()


def main():
    ap = argparse.ArgumentParser(description="write the appliance's initramfs (gzip newc cpio)")
    ap.add_argument("--init", required=True, help="the program to run as /init")
    ap.add_argument("--out", required=True, help="where to write the archive")
    ap.add_argument("--modules-dir", help="the kernel's lib/modules/<release> directory")
    ap.add_argument("--modules", help="file naming the wanted modules, one a line, # comments")
    ap.add_argument("--list", action="store_true", help="print what went in")
    a = ap.parse_args()

    wanted = []
    if a.modules:
        with open(a.modules) as f:
            for line in f:
                line = line.split("#", 1)[0].strip()
                if line:
                    wanted.append(line)
        if not a.modules_dir:
            die("--modules needs --modules-dir")
    mods = resolve(a.modules_dir, wanted) if wanted else []
    with open(a.init, "rb") as f:
        init = f.read()

    c = Cpio()
    listing = []
    for d in ("dev", "proc", "sys", "tmp", "run", "etc", "lib", "lib/modules"):
        c.dir(d, 0o1777 if d == "tmp" else 0o755)
    c.chardev("dev/console", 5, 1)
    c.file("init", init, 0o755)
    listing.append(("/init", len(init)))
    paths = []
    for name, blob in mods:
        path = "lib/modules/%s.ko" % name
        c.file(path, blob)
        paths.append("/" + path)
        listing.append(("/" + path, len(blob)))
    order = "".join(p + "\n" for p in paths).encode()
    c.file("lib/modules/load-order", order)
    listing.append(("/lib/modules/load-order", len(order)))

    raw = c.finish()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(raw)
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(gz.getvalue())
    os.replace(tmp, a.out)
    if a.list:
        for path, size in listing:
            print("  %9d  %s" % (size, path))
        print("  %9d  cpio, %d gzip (%s)" % (len(raw), len(gz.getvalue()), a.out))


if __name__ == "__main__":
    main()
