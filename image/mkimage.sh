#!/bin/sh
# image/mkimage.sh - everything `make image` leaves in build/, without root.
#
#   sh image/mkimage.sh [OUTDIR]       (OUTDIR defaults to build; needs OUTDIR/sluice)
#
#   vmlinuz      Debian's linux-image-cloud-amd64 bzImage (image/kernel.sh)
#   initramfs    gzip newc cpio: /init = sluice (stripped), /dev/console, the
#                modules of image/modules.txt and their dependencies in
#                /lib/modules/, and /lib/modules/load-order (image/initramfs.py)
#   cmdline      the kernel command line (below)
#   sluice.efi   the UKI: systemd-boot-efi's EFI stub with .osrel, .cmdline,
#                .linux and .initrd sections added by objcopy.  The firmware
#                runs the stub, the stub runs the kernel with that initrd and
#                command line; nothing else is read from the disk.
#   sluice.img   a GPT raw disk: one EFI system partition (FAT32) holding the
#                UKI as EFI/BOOT/BOOTX64.EFI, the path UEFI firmware boots from
#                removable media when it has no boot entry (EC2's first boot,
#                OVMF with empty variables)
#
# Direct kernel boot (QEMU -kernel/-initrd/-append) uses the first three; UEFI
# (OVMF, EC2 with --boot-mode uefi) uses sluice.img.  Prints each artifact's
# size and what the initramfs and the ESP hold.
set -eu

out=${1:-build}
work="$out/image"
stub=${EFI_STUB:-/usr/lib/systemd/boot/efi/linuxx64.efi.stub}
here=$(dirname "$0")

say() { echo "image: $*"; }
die() { echo "image: error: $*" >&2; exit 1; }

for tool in objcopy objdump strip mkfs.fat mmd mcopy mdir sgdisk python3; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (make deps installs it)"
done
[ -f "$stub" ] || die "$stub not found (package systemd-boot-efi)"
[ -x "$out/sluice" ] || die "$out/sluice not built"

# The kernel command line.  Kept short; each word earns its place:
#   console=ttyS0,115200   the serial port: QEMU's -serial, EC2's console output
#                          and serial console.  PID 1 writes its log to
#                          /dev/console, so it shows there whatever the loglevel.
#   quiet                  kernel messages below warnings stay in the ring
#                          buffer (serial output is slow under emulation)
#   panic=-1 oops=panic    any oops panics, and a panic reboots at once: an
#                          appliance restarts rather than run on in an unknown state
#   nvme_core.io_timeout=4294967295   EBS on Nitro is NVMe: never time out
#                          I/O, as AWS recommends (a timeout fails the WAL)
# PID 1 also reads sluice.config=<base64 properties> from /proc/cmdline when
# it is there; the image does not set it (fw_cfg and user-data do that job).
CMDLINE="console=ttyS0,115200 quiet panic=-1 oops=panic nvme_core.io_timeout=4294967295"

# 1. the kernel
sh "$here/kernel.sh" "$out"
rel=$(cat "$out/kernel/release")
moddir="$out/kernel/$rel/lib/modules/$rel"

# 2. the initramfs (the broker stripped: symbols stay in $out/sluice)
mkdir -p "$work"
strip --strip-all -o "$work/init" "$out/sluice"
say "initramfs:"
python3 "$here/initramfs.py" --init "$work/init" --out "$out/initramfs" \
	--modules-dir "$moddir" --modules "$here/modules.txt" --list

# 3. the command line
printf '%s\n' "$CMDLINE" >"$out/cmdline"

# 4. the UKI.  Sections go after the stub's last one, each on a 2 MiB
#    boundary of the image's address space (that costs no file space); the
#    stub finds them by name.
version=$("$out/sluice" version 2>/dev/null | head -n 1 || true)
cat >"$work/os-release" <<EOF
NAME="Sluice"
ID=sluice
PRETTY_NAME="Sluice appliance (${version:-sluice}, kernel $rel)"
VERSION_ID="${version##* }"
EOF
printf '%s' "$CMDLINE" >"$work/cmdline.uki"
end=0
for vs in $(objdump -h "$stub" | awk 'NF == 7 && $1 ~ /^[0-9]+$/ { print $4 ":" $3 }'); do
	e=$(( 0x${vs%%:*} + 0x${vs#*:} ))
	[ "$e" -gt "$end" ] && end=$e
done
[ "$end" -gt 0 ] || die "cannot read the section table of $stub"
align=2097152
next=$(( (end + align - 1) / align * align ))
set --
for sec in osrel:"$work/os-release" cmdline:"$work/cmdline.uki" linux:"$out/vmlinuz" initrd:"$out/initramfs"; do
	name=${sec%%:*}; file=${sec#*:}
	size=$(wc -c <"$file")
	set -- "$@" --add-section ".$name=$file" --change-section-vma ".$name=$(printf '0x%x' "$next")"
	next=$(( (next + size + align - 1) / align * align ))
done
objcopy "$@" "$stub" "$out/sluice.efi.tmp" || die "objcopy could not build the UKI"
mv "$out/sluice.efi.tmp" "$out/sluice.efi"

# 5. the ESP: FAT32, 64 MiB (FAT32's floor is 65525 clusters; the UKI is about 15 MiB)
esp_mib=64
rm -f "$work/esp.img"
mkfs.fat -F 32 -s 1 -S 512 -n SLUICE-ESP -C "$work/esp.img" $((esp_mib * 1024)) >/dev/null \
	|| die "mkfs.fat failed"
export MTOOLS_SKIP_CHECK=1
mmd -i "$work/esp.img" ::/EFI ::/EFI/BOOT
mcopy -i "$work/esp.img" "$out/sluice.efi" ::/EFI/BOOT/BOOTX64.EFI

# 6. the disk: 1 MiB for the protective MBR and the primary GPT, the ESP,
#    and 1 MiB at the end for the backup GPT.
rm -f "$out/sluice.img.tmp"
truncate -s $(( (esp_mib + 2) * 1048576 )) "$out/sluice.img.tmp"
sgdisk --clear --new=1:2048:+${esp_mib}M --typecode=1:ef00 --change-name=1:ESP \
	"$out/sluice.img.tmp" >/dev/null || die "sgdisk failed"
dd if="$work/esp.img" of="$out/sluice.img.tmp" bs=1M seek=1 conv=notrunc status=none
mv "$out/sluice.img.tmp" "$out/sluice.img"
rm -f "$work/esp.img"

size() { wc -c <"$1" | tr -d ' '; }
say "kernel $rel"
say "cmdline: $CMDLINE"
printf 'image: %-18s %10s bytes\n' vmlinuz "$(size "$out/vmlinuz")" \
	initramfs "$(size "$out/initramfs")" sluice.efi "$(size "$out/sluice.efi")" \
	sluice.img "$(size "$out/sluice.img")"
say "sluice.img partitions:"
sgdisk --print "$out/sluice.img" | sed -n '/^Number/,$p' | sed 's/^/  /'
say "ESP (partition 1, FAT32, ${esp_mib} MiB):"
mdir -i "$out/sluice.img@@1M" -/ -b ::/ | sed 's/^::/  /'
say "UKI sections:"
for ns in $(objdump -h "$out/sluice.efi" | awk '$2 ~ /^\.(osrel|cmdline|linux|initrd)$/ { print $2 ":" $3 }'); do
	printf '  %-9s %10d bytes\n' "${ns%%:*}" "$((0x${ns#*:}))"
done
