#!/bin/sh
# image/kernel.sh - Debian's cloud kernel, unpacked into build/kernel/.
#
#   sh image/kernel.sh [OUTDIR]        (OUTDIR defaults to build)
#
# The metapackage linux-image-cloud-amd64 depends on one versioned package,
# linux-image-<abi>-cloud-amd64; that one holds /boot/vmlinuz-<abi> and
# /lib/modules/<abi>/.  We resolve the name with apt-cache, fetch the .deb
# with `apt-get download` (no root needed, nothing installed) and unpack it
# with `dpkg-deb -x`.  Results:
#
#   OUTDIR/kernel/<abi>/          the unpacked package
#   OUTDIR/kernel/release         "<abi>", e.g. 6.1.0-56-cloud-amd64
#   OUTDIR/vmlinuz                a copy of the bzImage (EFI stub inside)
#
# A second run with the same candidate version does nothing.  When the
# archive has moved on and the local package lists name a version that is
# no longer there, the lists are refreshed once (apt-get update, as root or
# through sudo) and the download is tried again.
set -eu

out=${1:-build}
kdir="$out/kernel"
meta=linux-image-cloud-amd64

say() { echo "image: $*"; }
die() { echo "image: error: $*" >&2; exit 1; }

as_root=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
	as_root="sudo"
fi

# The versioned package the metapackage depends on, e.g. linux-image-6.1.0-56-cloud-amd64.
resolve() {
	apt-cache depends "$meta" 2>/dev/null |
		sed -n 's/^ *Depends: *\(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n 1
}

pkg=$(resolve)
if [ -z "$pkg" ]; then
	say "apt knows no $meta; refreshing the package lists"
	$as_root apt-get update -qq || die "apt-get update failed"
	pkg=$(resolve)
	[ -n "$pkg" ] || die "apt-cache finds no package that $meta depends on"
fi
abi=${pkg#linux-image-}
version=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: *//p')
if [ -z "$version" ] || [ "$version" = "(none)" ]; then
	die "no candidate version of $pkg"
fi

stamp="$kdir/$abi/.unpacked-$version"
if [ -f "$stamp" ] && [ -f "$out/vmlinuz" ]; then
	say "kernel $abi ($version) ok"
	exit 0
fi

mkdir -p "$kdir/dl"
rm -f "$kdir"/dl/*.deb
# apt-get download writes into the working directory; as root it warns that
# _apt cannot write there, which is harmless.
fetch() { (cd "$kdir/dl" && apt-get download -q "$pkg=$version" >download.log 2>&1); }
if ! fetch; then
	say "download of $pkg $version failed; refreshing the package lists once"
	$as_root apt-get update -qq || die "apt-get update failed"
	version=$(apt-cache policy "$pkg" | sed -n 's/^ *Candidate: *//p')
	stamp="$kdir/$abi/.unpacked-$version"
	fetch || { cat "$kdir/dl/download.log" >&2; die "apt-get download $pkg failed"; }
fi
deb=$(find "$kdir/dl" -name "${pkg}_*.deb" | head -n 1)
[ -n "$deb" ] || die "apt-get download left no ${pkg}_*.deb in $kdir/dl"

rm -rf "${kdir:?}/${abi:?}"
mkdir -p "$kdir/$abi"
dpkg-deb -x "$deb" "$kdir/$abi" || die "dpkg-deb -x $deb failed"
[ -f "$kdir/$abi/boot/vmlinuz-$abi" ] || die "$deb holds no boot/vmlinuz-$abi"
[ -d "$kdir/$abi/lib/modules/$abi" ] || die "$deb holds no lib/modules/$abi"
cp "$kdir/$abi/boot/vmlinuz-$abi" "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$abi" >"$kdir/release"
rm -f "$deb"
touch "$stamp"
say "kernel $abi ($version) unpacked in $kdir/$abi"
