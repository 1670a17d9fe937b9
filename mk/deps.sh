#!/bin/sh
# mk/deps.sh - everything a fresh Debian bookworm machine needs to build and
# test Sluice.  `make deps` runs it; so do `make test`, `make run`, ...
#
# Four steps, each skipped when its result is already present, so a second
# run takes well under a second:
#   1. Debian packages: compilers (musl-gcc, clang with libFuzzer), the test
#      clients (kcat, confluent-kafka, kafka-python, boto3), node and npm,
#      python3 (mk/gen-ta.py) and ca-certificates (the compiled-in anchors);
#      for the image (image/, tests/qemu): QEMU and OVMF, systemd-boot-efi's
#      EFI stub, mtools, dosfstools and gdisk (the ESP and GPT made without
#      root), binutils (objcopy), shellcheck.
#   2. BearSSL and zstd, built from Debian's source packages with musl-gcc
#      into build/deps/{include,lib}.  They get their own flags, never ours
#      (-Werror in a dependency would only break the build on a new compiler).
#   3. The node clients of package.json (kafkajs, s3rver) in node_modules/.
#   4. build/deps/kinclude: the kernel's UAPI headers (linux-libc-dev) for
#      musl-gcc, which searches only musl's own include directory and so does
#      not see <linux/io_uring.h>.  Symlinks, not copies, so they follow the
#      installed package.
#
# Prints one line per step; exits non-zero with a message on failure.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
deps="$top/build/deps"
src="$deps/src"

say() { echo "deps: $*"; }
die() { echo "deps: error: $*" >&2; exit 1; }

# Variables of the calling make (CC=clang, OPT=..., -j jobserver) must not
# reach the dependency builds.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES CFLAGS CPPFLAGS LDFLAGS CC AR || true

as_root=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		as_root="sudo"
	fi
fi

PACKAGES="build-essential make musl-tools clang libclang-rt-14-dev llvm kcat
librdkafka-dev python3-confluent-kafka python3-kafka python3-boto3 dpkg-dev
python3 openssl ca-certificates xz-utils lz4 zstd python3-snappy python3-crcmod linux-libc-dev fio
qemu-system-x86 ovmf systemd-boot-efi mtools dosfstools gdisk binutils shellcheck"

installed() { # package
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

has_deb_src() {
	grep -Eqs '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
		/etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		/etc/apt/sources.list.d/*.sources
}

# Add deb-src beside Debian's "deb" entries, in whichever format is in use
# (deb822 debian.sources on new installs, one-line sources.list on old ones).
enable_deb_src() {
	f=/etc/apt/sources.list.d/debian.sources
	if [ -f "$f" ]; then
		if grep -Eq '^Types:[[:space:]]*deb[[:space:]]*$' "$f"; then
			$as_root sed -i 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' "$f"
		fi
	elif [ -f /etc/apt/sources.list ] && ! grep -q '^deb-src[[:space:]]' /etc/apt/sources.list; then
		grep '^deb[[:space:]].*debian' /etc/apt/sources.list | sed 's/^deb/deb-src/' \
			| $as_root tee -a /etc/apt/sources.list >/dev/null
	fi
	has_deb_src || die "no deb-src entry in /etc/apt/sources.list{,.d}; add one for bookworm"
}

apt_updated=0
apt_update() {
	[ "$apt_updated" -eq 1 ] && return 0
	if [ "$(id -u)" -ne 0 ] && [ -z "$as_root" ]; then
		die "not root and no sudo: cannot run apt-get"
	fi
	$as_root apt-get update -qq >&2 || die "apt-get update failed"
	apt_updated=1
}

# ---- 1. packages
missing=""
for p in $PACKAGES; do
	installed "$p" || missing="$missing $p"
done
if ! command -v node >/dev/null 2>&1; then
	missing="$missing nodejs npm"
fi
if [ -n "$missing" ]; then
	say "installing$missing"
	enable_deb_src
	apt_update
	# shellcheck disable=SC2086 # word splitting of the package list is wanted
	$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
		|| die "apt-get install failed:$missing"
	say "packages installed"
else
	say "packages ok"
fi
command -v musl-gcc >/dev/null 2>&1 || die "musl-gcc not found after installing musl-tools"
command -v npm >/dev/null 2>&1 || die "node is present but npm is not; install npm for this node"

ncpu=$(nproc 2>/dev/null || echo 2)

# Unpack a Debian source package into $src once; print its directory.
source_dir() { # source-package
	d=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name "$1-*" 2>/dev/null | head -n 1)
	if [ -z "$d" ]; then
		if ! apt-cache showsrc "$1" 2>/dev/null | grep -q '^Package:'; then
			enable_deb_src
			apt_update
		fi
		mkdir -p "$src"
		(cd "$src" && apt-get source -qq "$1" >"$src/$1.fetch.log" 2>&1) \
			|| { cat "$src/$1.fetch.log" >&2; die "apt-get source $1 failed"; }
		d=$(find "$src" -mindepth 1 -maxdepth 1 -type d -name "$1-*" | head -n 1)
		[ -n "$d" ] || die "apt-get source $1 left no directory in $src"
	fi
	echo "$d"
}

# A built archive must define a symbol we rely on, or it is not the library.
check_lib() { # archive symbol
	nm -g "$1" 2>/dev/null | grep -q " T $2\$" || die "$1 does not define $2; see the build log"
}

mkdir -p "$deps/include" "$deps/lib"

# ---- 2a. BearSSL: its own Makefile, only the static library target.
if [ -f "$deps/lib/libbearssl.a" ] && [ -f "$deps/include/bearssl.h" ]; then
	say "bearssl ok"
else
	d=$(source_dir bearssl)
	log="$deps/bearssl.build.log"
	make -C "$d" -j"$ncpu" CC=musl-gcc AR=ar 'CFLAGS=-W -Wall -O2' \
		BUILD=build-musl lib >"$log" 2>&1 \
		|| { tail -n 30 "$log" >&2; die "bearssl build failed (log: $log)"; }
	check_lib "$d/build-musl/libbearssl.a" br_ssl_client_init_full
	cp "$d"/inc/*.h "$deps/include/"
	cp "$d/build-musl/libbearssl.a" "$deps/lib/libbearssl.a.tmp"
	mv "$deps/lib/libbearssl.a.tmp" "$deps/lib/libbearssl.a"
	say "bearssl built"
fi

# ---- 2b. zstd: lib/Makefile's static target, single-threaded, no legacy formats.
if [ -f "$deps/lib/libzstd.a" ] && [ -f "$deps/include/zstd.h" ]; then
	say "zstd ok"
else
	d=$(source_dir libzstd)
	log="$deps/zstd.build.log"
	make -C "$d/lib" -j"$ncpu" CC=musl-gcc AR=ar CFLAGS=-O2 \
		ZSTD_LEGACY_SUPPORT=0 libzstd.a >"$log" 2>&1 \
		|| { tail -n 30 "$log" >&2; die "zstd build failed (log: $log)"; }
	check_lib "$d/lib/libzstd.a" ZSTD_compress
	cp "$d/lib/zstd.h" "$d/lib/zstd_errors.h" "$d/lib/zdict.h" "$deps/include/"
	cp "$d/lib/libzstd.a" "$deps/lib/libzstd.a.tmp"
	mv "$deps/lib/libzstd.a.tmp" "$deps/lib/libzstd.a"
	say "zstd built"
fi

# ---- 3. node clients
if [ -f "$top/node_modules/kafkajs/package.json" ] && [ -f "$top/node_modules/s3rver/package.json" ]; then
	say "node modules ok"
else
	log="$deps/npm.log"
	if [ -f "$top/package-lock.json" ]; then
		(cd "$top" && npm ci --no-audit --no-fund >"$log" 2>&1) \
			|| { tail -n 30 "$log" >&2; die "npm ci failed (log: $log)"; }
	else
		(cd "$top" && npm install --no-audit --no-fund >"$log" 2>&1) \
			|| { tail -n 30 "$log" >&2; die "npm install failed (log: $log)"; }
	fi
	say "node modules installed"
fi

# ---- 4. kernel headers for musl-gcc (the Makefile adds -isystem build/deps/kinclude)
kinc="$deps/kinclude"
arch_asm="/usr/include/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)/asm"
if [ -L "$kinc/linux" ] && [ -L "$kinc/asm" ] && [ -L "$kinc/asm-generic" ] &&
	[ -f "$kinc/linux/io_uring.h" ] && [ -f "$kinc/asm/unistd.h" ]; then
	say "kernel headers ok"
else
	[ -f /usr/include/linux/io_uring.h ] || die "/usr/include/linux/io_uring.h is missing (linux-libc-dev)"
	[ -d "$arch_asm" ] || die "$arch_asm is missing (linux-libc-dev)"
	mkdir -p "$kinc"
	ln -sfn /usr/include/linux "$kinc/linux"
	ln -sfn /usr/include/asm-generic "$kinc/asm-generic"
	ln -sfn "$arch_asm" "$kinc/asm"
	say "kernel headers linked in $kinc"
fi
