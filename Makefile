# Sluice: one build.  `make` -> build/sluice (static, musl).
#   make deps    install everything a fresh Debian bookworm machine needs (idempotent)
#   make test    unit tests, fuzz smoke runs and integration tests with real clients
#   make run     the appliance image under QEMU: Kafka on 127.0.0.1:9092, S3 in s3rver,
#                configured by image/run.properties; Ctrl-C powers it off
#   make image   build/vmlinuz, initramfs, cmdline, sluice.efi (UKI), sluice.img (GPT disk)
#   make run-process   the broker as a plain process on 127.0.0.1:9092 (kernel/sluice.properties)
#   make bench   throughput and latency beside librdkafka's mock cluster, same run
#   make fuzz    longer libFuzzer runs (FUZZ_SECONDS per target)
#   make SANITIZE=address,undefined test-unit   unit tests under clang sanitizers (glibc)
#   make SANITIZE=address,undefined test-integration   real clients against build/san/sluice
#
# Our code gets -Wall -Wextra -Werror; dependencies are built apart by mk/deps.sh
# into build/deps with their own flags.

# B may be overridden (make B=build/alt) to build apart; dependencies stay shared.
B       ?= build
DEPS    := build/deps
SRCDIRS := kernel net storage kafka
SRC     := $(wildcard $(addsuffix /*.c,$(SRCDIRS)))
MAIN    := kernel/main.c
LIBSRC  := $(filter-out $(MAIN),$(SRC))
HDRS    := $(wildcard $(addsuffix /*.h,$(SRCDIRS)))

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wvla
CSTD    := -std=c11 -D_GNU_SOURCE
OPT     ?= -O2 -g

ifeq ($(SANITIZE),)
CC      := musl-gcc
OBJ     := $(B)/obj
BIN     := $(B)/sluice
LDSTATIC:= -static
else
CC      := clang
OBJ     := $(B)/san
BIN     := $(B)/san/sluice
LDSTATIC:=
OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE) -DSL_DEBUG
endif

# The kernel's UAPI headers (<linux/io_uring.h>), which musl-gcc does not search.
KINC    := -isystem $(DEPS)/kinclude
CFLAGS  := $(CSTD) $(OPT) $(WARN) -I. -I$(DEPS)/include $(KINC)
LIBZSTD := $(DEPS)/lib/libzstd.a
# Linked into every binary: zstd for batches, BearSSL for TLS to S3.
LIBS    := $(LIBZSTD) $(DEPS)/lib/libbearssl.a
# Trust anchors compiled from Debian's ca-certificates (net/tls.c's built-ins).
CABUNDLE ?= /etc/ssl/certs/ca-certificates.crt
GENTA   := $(B)/gen/trust_anchors.c
LIBOBJ  := $(patsubst %.c,$(OBJ)/%.o,$(LIBSRC)) $(OBJ)/gen/trust_anchors.o
UNITSRC := $(wildcard tests/unit/test_*.c)
UNITBIN := $(patsubst tests/unit/%.c,$(OBJ)/tests/%,$(UNITSRC))

FUZZSRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZBIN := $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(FUZZSRC))
FUZZOBJ := $(patsubst %.c,$(B)/fuzzobj/%.o,$(LIBSRC)) $(B)/fuzzobj/gen/trust_anchors.o
FUZZFLAGS := $(CSTD) -O1 -g -I. -I$(DEPS)/include -fsanitize=fuzzer-no-link,address,undefined

.PHONY: all deps test test-unit test-fuzz test-integration test-qemu run run-process image \
	image-build bench fuzz clean

all: $(BIN)

deps:
	@sh mk/deps.sh

$(OBJ)/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(GENTA): mk/gen-ta.py $(CABUNDLE)
	@mkdir -p $(dir $@)
	python3 mk/gen-ta.py $(CABUNDLE) $@

$(OBJ)/gen/trust_anchors.o: $(GENTA)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BIN): $(OBJ)/kernel/main.o $(LIBOBJ)
	$(CC) $(CFLAGS) $(LDSTATIC) -o $@ $^ $(LIBS)

$(OBJ)/tests/%: tests/unit/%.c tests/unit/t.h tests/unit/tbroker.h $(LIBOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDSTATIC) -o $@ $< $(LIBOBJ) $(LIBS)

# The S3 client on the command line, for tests/integration/test_s3_client.py:
# build/obj/tests/s3tool (musl, static) and build/san/tests/s3tool (sanitizers).
S3TOOL  := $(OBJ)/tests/s3tool
$(S3TOOL): tests/s3/s3tool.c $(LIBOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDSTATIC) -o $@ $< $(LIBOBJ) $(LIBS)

# The C engines' bucket for tests/integration/test_bucket_reader.py, which reads
# it with the independent reader tests/s3/bucket.py: build/obj/tests/mfwrite.
MFWRITE := $(OBJ)/tests/mfwrite
$(MFWRITE): tests/s3/mfwrite.c $(LIBOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDSTATIC) -o $@ $< $(LIBOBJ) $(LIBS)

# The WAL benchmark (bench/run.sh runs it beside fio): the WAL and the loop, musl, static.
$(B)/bench/walbench: bench/walbench.c $(LIBOBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDSTATIC) -o $@ $< $(LIBOBJ) $(LIBS)

$(B)/bench/crcbench: bench/crcbench.c $(OBJ)/kernel/crc32c.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDSTATIC) -o $@ $^

$(B)/fuzzobj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	clang $(FUZZFLAGS) -c $< -o $@

$(B)/fuzzobj/gen/trust_anchors.o: $(GENTA)
	@mkdir -p $(dir $@)
	clang $(FUZZFLAGS) -c $< -o $@

$(B)/fuzz/%: tests/fuzz/%.c $(FUZZOBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZOBJ) $(LIBS)

test-unit: $(UNITBIN) $(S3TOOL)
	@sh tests/run.sh unit $(UNITBIN)

test-fuzz: $(FUZZBIN)
	@sh tests/run.sh fuzz $(FUZZBIN)

# test_object_reader.py runs the unit test's writer (test_object --write DIR),
# test_bucket_reader.py runs mfwrite.
test-integration: $(BIN) $(S3TOOL) $(OBJ)/tests/test_object $(MFWRITE)
	@SLUICE_BIN=$(CURDIR)/$(BIN) sh tests/run.sh integration

# The appliance image (image/mkimage.sh says what each file is).  image-build
# always runs the script: it is quick once the kernel is fetched, and prints
# the sizes and contents.
image-build: $(BIN)
	@sh image/mkimage.sh $(B)

# The baseline /init of tests/qemu: powers off at once.
$(B)/qemu/poweroff: tests/qemu/poweroff.c
	@mkdir -p $(dir $@)
	musl-gcc $(CSTD) -O2 $(WARN) -static -o $@ $<

test-qemu: image-build $(B)/qemu/poweroff
	@sh tests/run.sh qemu

# The integration tests run twice: against the musl binary that ships, and
# against an AddressSanitizer/UBSan build of the same code (glibc, clang),
# which turns memory errors under real clients into failures.
SANBIN  := $(B)/san/sluice
test: deps
	@$(MAKE) --no-print-directory $(B)/sluice $(UNITBIN) $(FUZZBIN) $(B)/obj/tests/s3tool $(B)/obj/tests/mfwrite \
		$(B)/qemu/poweroff
	@$(MAKE) --no-print-directory image-build
	@$(MAKE) --no-print-directory SANITIZE=address,undefined $(SANBIN) $(B)/san/tests/s3tool $(B)/san/tests/mfwrite
	@SAN_BIN=$(CURDIR)/$(SANBIN) sh tests/run.sh all $(UNITBIN) -- $(FUZZBIN)

image: deps
	@$(MAKE) --no-print-directory image-build

# RUN_CONFIG names another properties file for the guest.
RUN_CONFIG ?= image/run.properties
run: deps
	@$(MAKE) --no-print-directory image-build
	@B=$(B) python3 image/run.py --config $(RUN_CONFIG)

run-process: deps
	@$(MAKE) --no-print-directory $(B)/sluice
	@test -e $(B)/sluice.wal || $(B)/sluice format --config kernel/sluice.properties
	$(B)/sluice serve --config kernel/sluice.properties

bench: deps
	@$(MAKE) --no-print-directory $(B)/sluice $(B)/bench/walbench $(B)/bench/crcbench
	@sh bench/run.sh

fuzz: deps
	@$(MAKE) --no-print-directory $(FUZZBIN)
	@for f in $(FUZZBIN); do sh tests/fuzz/run-one.sh $$f $${FUZZ_SECONDS:-300} || exit 1; done

clean:
	rm -rf $(OBJ) $(B)/san $(B)/fuzz $(B)/fuzzobj $(B)/sluice $(B)/bench $(B)/gen $(B)/image $(B)/qemu \
		$(B)/vmlinuz $(B)/initramfs $(B)/cmdline $(B)/sluice.efi $(B)/sluice.img
