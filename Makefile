# genshift - one non-recursive Makefile for the whole tree.
#   make            build the genshift binary and the module libraries
#   make check      unit, differential and sample tests (installs deps first)
#   make SAN=1      the same with ASan+UBSan (separate build directory)
#   make deps       idempotent apt installs (needs root)
#   make bench      benchmarks against qemu-img / QEMU, ratios measured in the same run
#   make demo       the README's first command
#   make fuzz       libFuzzer binaries (clang); `make check` replays their corpora without clang
#   V=1             show the commands

CC ?= cc
ifeq ($(origin CC),default)
CC := cc
endif
SAN ?= 0
ifeq ($(SAN),1)
BUILD ?= build-san
else
BUILD ?= build
endif

WARN := -Wall -Wextra -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes -Wshadow \
	-Wpointer-arith -Wundef -Wwrite-strings -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I. -MD -MP
LDFLAGS ?=
ifeq ($(SAN),1)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

# ---- module sources (explicit lists; one static library per module) ----
VHDX_SRCS := vhdx/vdisk.c vhdx/raw.c \
	vhdx/vhd.c vhdx/vhd-create.c vhdx/vhd-check.c \
	vhdx/vhdx.c

PARTITION_SRCS :=

CONVERT_SRCS := convert/main.c convert/cmd-disk.c convert/output.c

VHDX_OBJS := $(VHDX_SRCS:%.c=$(BUILD)/%.o)
PARTITION_OBJS := $(PARTITION_SRCS:%.c=$(BUILD)/%.o)
CONVERT_OBJS := $(CONVERT_SRCS:%.c=$(BUILD)/%.o)

LIBVHDX := $(BUILD)/libvhdx.a
LIBPARTITION := $(BUILD)/libpartition.a
GENSHIFT := $(BUILD)/genshift

LIBS_JSON := $(shell pkg-config --libs json-c 2>/dev/null || echo -ljson-c)
CFLAGS_JSON := $(shell pkg-config --cflags json-c 2>/dev/null)

.PHONY: all check check-unit check-diff check-samples check-fuzz deps demo bench fuzz clean
all: $(GENSHIFT)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(CFLAGS_JSON) -c -o $@ $<

$(LIBVHDX): $(VHDX_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBPARTITION): $(PARTITION_OBJS)
	@$(if $(Q),echo "  AR      $@")
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && $(if $^,ar rcs $@ $^,printf '!<arch>\n' >$@)

$(GENSHIFT): $(CONVERT_OBJS) $(LIBPARTITION) $(LIBVHDX)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CONVERT_OBJS) $(LIBPARTITION) $(LIBVHDX) $(LIBS_JSON)

# ---- unit tests (cmocka): tests/unit/<name>.c -> $(BUILD)/tests/<name> ----
UNIT_TESTS := vdisk_test
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/tests/%)
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBPARTITION) $(LIBVHDX) -lcmocka $(LIBS_JSON)

# ---- fuzz targets: tests/fuzz/fuzz_<name>.c, LLVMFuzzerTestOneInput ----
# Built twice: with a plain main() that replays files (for make check, any compiler) and,
# by `make fuzz`, with clang's libFuzzer.
FUZZ_TARGETS :=
FUZZ_REPLAY_BINS := $(FUZZ_TARGETS:%=$(BUILD)/tests/%-replay)
$(BUILD)/tests/%-replay: $(BUILD)/tests/fuzz/%.o $(BUILD)/tests/fuzz/replay-main.o $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBPARTITION) $(LIBVHDX) $(LIBS_JSON)

FUZZ_CFLAGS := -O1 -g -fsanitize=fuzzer,address,undefined -std=gnu11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -I.
fuzz: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(VHDX_SRCS) $(PARTITION_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS_JSON)

# ---- test programs used by the shell-level tests: tests/tools/<name>.c -> $(BUILD)/tests/<name> ----
TEST_TOOLS := vhd_tool
TEST_TOOL_BINS := $(TEST_TOOLS:%=$(BUILD)/tests/%)
$(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBPARTITION) $(LIBVHDX) $(LIBS_JSON)

check: deps
	$(MAKE) check-nodeps

.PHONY: check-nodeps
check-nodeps: $(GENSHIFT) $(UNIT_BINS) $(FUZZ_REPLAY_BINS) $(TEST_TOOL_BINS)
	$(Q)BUILD=$(BUILD) UNIT_BINS="$(UNIT_BINS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" tests/run-all.sh

deps:
	@if [ "$$(id -u)" = 0 ]; then sh scripts/deps.sh; \
	else echo "make deps: not root, assuming dependencies are installed"; fi

demo: deps
	$(MAKE) $(GENSHIFT)
	$(Q)BUILD=$(BUILD) scripts/demo.sh

bench: deps
	$(MAKE) $(GENSHIFT)
	$(Q)BUILD=$(BUILD) tests/bench/run.sh

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
