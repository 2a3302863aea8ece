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
.DEFAULT_GOAL := all
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
	vhdx/vhdx.c vhdx/vhdx-bat.c vhdx/vhdx-log.c vhdx/vhdx-write.c vhdx/vhdx-create.c \
	vhdx/vhdx-check.c vhdx/crc32c.c

PARTITION_SRCS := partition/crc32.c partition/types.c partition/table.c partition/mbr.c \
	partition/gpt.c partition/plan.c partition/apply.c partition/json.c

CONVERT_SRCS := convert/main.c convert/cmd-disk.c convert/output.c convert/cmd-boot.c convert/cmd-partition.c
CONVERT_SRCS += convert/analyze.c convert/analyze-json.c convert/cmd-analyze.c convert/translate.c
CONVERT_SRCS += convert/cmd-nvram.c
CONVERT_SRCS += convert/cmd-convert.c convert/pipeline.c convert/pipeline-run.c convert/undo-regions.c convert/cmd-verify-both.c
CONVERT_SRCS += convert/undo-regions-file.c

# ---- vmm/: the KVM VMM (issue 5); the genshift binary links it ----
VMM_SRCS := vmm/ns16550.c vmm/mc146818.c vmm/fw_cfg.c vmm/pci.c vmm/piix4_pm.c vmm/pflash.c \
	vmm/virtio_blk.c vmm/kvm.c vmm/machine.c vmm/run.c vmm/sandbox.c vmm/vmcfg.c
VMM_SRCS += vmm/acpi.c
VMM_OBJS := $(VMM_SRCS:%.c=$(BUILD)/%.o)
LIBVMM := $(BUILD)/libvmm.a

VHDX_OBJS := $(VHDX_SRCS:%.c=$(BUILD)/%.o)
PARTITION_OBJS := $(PARTITION_SRCS:%.c=$(BUILD)/%.o)
CONVERT_OBJS := $(CONVERT_SRCS:%.c=$(BUILD)/%.o)

LIBVHDX := $(BUILD)/libvhdx.a
LIBPARTITION := $(BUILD)/libpartition.a
GENSHIFT := $(BUILD)/genshift

LIBS_JSON := $(shell pkg-config --libs json-c 2>/dev/null || echo -ljson-c)
CFLAGS_JSON := $(shell pkg-config --cflags json-c 2>/dev/null)

# ---- bootfix/: ESP, GRUB EFI loader, NVRAM, guest edits (issue 7); genshift links it ----
# Sources are added by their owners as they land: esp.c grub.c nvram.c guest.c.
BOOTFIX_SRCS :=
BOOTFIX_SRCS += bootfix/nvram.c
BOOTFIX_SRCS += bootfix/guest.c bootfix/guest-edit.c
BOOTFIX_SRCS += bootfix/esp.c bootfix/grub.c
BOOTFIX_OBJS = $(BOOTFIX_SRCS:%.c=$(BUILD)/%.o)
LIBBOOTFIX := $(BUILD)/libbootfix.a
LIBS_BOOTFIX := $(shell pkg-config --libs efiboot efivar libguestfs blkid 2>/dev/null || echo -lefiboot -lefivar -lguestfs -lblkid)
CFLAGS_BOOTFIX := $(shell pkg-config --cflags efiboot efivar libguestfs 2>/dev/null)
CFLAGS += $(CFLAGS_BOOTFIX)
$(LIBBOOTFIX): $(BOOTFIX_OBJS)
	@$(if $(Q),echo "  AR      $@")
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && $(if $^,ar rcs $@ $^,printf '!<arch>\n' >$@)
# Unit tests of bootfix (tests/unit/bootfix_*_test.c) link it with everything below it.
BOOTFIX_UNIT_TESTS :=
BOOTFIX_UNIT_TESTS += bootfix_nvram_test
BOOTFIX_UNIT_TESTS += bootfix_guest_test
BOOTFIX_UNIT_TESTS += bootfix_esp_test
BOOTFIX_UNIT_BINS = $(BOOTFIX_UNIT_TESTS:%=$(BUILD)/tests/%)
$(BUILD)/tests/bootfix_%: $(BUILD)/tests/unit/bootfix_%.o $(LIBBOOTFIX) $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBBOOTFIX) $(LIBPARTITION) $(LIBVHDX) -lcmocka $(LIBS_BOOTFIX) $(LIBS_JSON)

.PHONY: all check check-unit check-diff check-samples check-fuzz deps demo bench fuzz clean
# Keep the objects of pattern-built tests and tools: they are not throw-away intermediates.
.SECONDARY:
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

$(LIBVMM): $(VMM_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(GENSHIFT): $(CONVERT_OBJS) $(LIBBOOTFIX) $(LIBVMM) $(LIBPARTITION) $(LIBVHDX)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CONVERT_OBJS) $(LIBBOOTFIX) $(LIBVMM) $(LIBPARTITION) $(LIBVHDX) $(LIBS_BOOTFIX) $(LIBS_JSON) -lpthread

# ---- unit tests (cmocka): tests/unit/<name>.c -> $(BUILD)/tests/<name> ----
UNIT_TESTS := vdisk_test partition_test vhd_test vhdx_test
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/tests/%)
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBPARTITION) $(LIBVHDX) -lcmocka $(LIBS_JSON)

# ---- fuzz targets: tests/fuzz/fuzz_<name>.c, LLVMFuzzerTestOneInput ----
# Built twice: with a plain main() that replays files (for make check, any compiler) and,
# by `make fuzz`, with clang's libFuzzer.
FUZZ_TARGETS := fuzz_vhd fuzz_partition fuzz_vhdx
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
TEST_TOOLS := vhd_tool vhdx_tool part_prop
TEST_TOOL_BINS := $(TEST_TOOLS:%=$(BUILD)/tests/%)
$(BUILD)/tests/%: $(BUILD)/tests/tools/%.o $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBPARTITION) $(LIBVHDX) $(LIBS_JSON)

# ---- vmm/ tests (issue 5): device-model unit tests and the vmcfg fuzz target link libvmm ----
VMM_UNIT_TESTS := vmm_ns16550_test vmm_mc146818_test vmm_fw_cfg_test vmm_pci_test \
	vmm_virtio_blk_test vmm_vmcfg_test vmm_sandbox_test vmm_pflash_test
VMM_UNIT_TESTS += vmm_acpi_test
VMM_UNIT_BINS := $(VMM_UNIT_TESTS:%=$(BUILD)/tests/%)
UNIT_TESTS += $(VMM_UNIT_TESTS)
UNIT_BINS += $(VMM_UNIT_BINS)
$(VMM_UNIT_BINS): $(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBVMM) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBVMM) $(LIBVHDX) -lcmocka $(LIBS_JSON) -lpthread
# tests/tools/acpi_dump (tests/diff/acpi-iasl.test.sh) needs libvmm, so it has its own rule.
TEST_TOOLS += acpi_dump
TEST_TOOL_BINS += $(BUILD)/tests/acpi_dump
$(BUILD)/tests/acpi_dump: $(BUILD)/tests/tools/acpi_dump.o $(LIBVMM) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBVMM) $(LIBVHDX) $(LIBS_JSON) -lpthread
FUZZ_TARGETS += fuzz_vmcfg
FUZZ_REPLAY_BINS += $(BUILD)/tests/fuzz_vmcfg-replay
$(BUILD)/tests/fuzz_vmcfg-replay: $(BUILD)/tests/fuzz/fuzz_vmcfg.o $(BUILD)/tests/fuzz/replay-main.o $(LIBVMM) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBVMM) $(LIBVHDX) $(LIBS_JSON) -lpthread
fuzz: $(BUILD)/fuzz/fuzz_vmcfg
$(BUILD)/fuzz/fuzz_vmcfg: tests/fuzz/fuzz_vmcfg.c vmm/vmcfg.c $(VHDX_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS_JSON)
# bootfix/nvram.c's parser: the replay links libbootfix and the libraries below it.
FUZZ_TARGETS += fuzz_nvram
FUZZ_REPLAY_BINS += $(BUILD)/tests/fuzz_nvram-replay
$(BUILD)/tests/fuzz_nvram-replay: $(BUILD)/tests/fuzz/fuzz_nvram.o $(BUILD)/tests/fuzz/replay-main.o $(LIBBOOTFIX) $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBBOOTFIX) $(LIBPARTITION) $(LIBVHDX) $(LIBS_BOOTFIX) $(LIBS_JSON)
fuzz: $(BUILD)/fuzz/fuzz_nvram
$(BUILD)/fuzz/fuzz_nvram: tests/fuzz/fuzz_nvram.c bootfix/nvram.c $(PARTITION_SRCS) $(VHDX_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) $(CFLAGS_BOOTFIX) -o $@ $^ $(LIBS_BOOTFIX) $(LIBS_JSON)

# ---- convert/ analyze and gen 1 -> gen 2 configuration translation (issue 7) ----
TEST_TOOLS += translate_golden
TEST_TOOL_BINS += $(BUILD)/tests/translate_golden
$(BUILD)/tests/translate_golden: $(BUILD)/tests/tools/translate_golden.o $(BUILD)/convert/translate.o $(LIBVMM) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBVMM) $(LIBVHDX) $(LIBS_JSON) -lpthread
# The analysis judges guest facts (bootfix's struct guest_info) and reads vmcfg files.
UNIT_TESTS += convert_analyze_test
UNIT_BINS += $(BUILD)/tests/convert_analyze_test
$(BUILD)/tests/convert_analyze_test: $(BUILD)/tests/unit/convert_analyze_test.o $(BUILD)/convert/analyze.o $(LIBBOOTFIX) $(LIBVMM) $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBBOOTFIX) $(LIBVMM) $(LIBPARTITION) $(LIBVHDX) -lcmocka $(LIBS_BOOTFIX) $(LIBS_JSON) -lpthread

# tests/tools/esp_tool (tests/diff/esp-*, tests/boot/esp-*) formats ESPs: it links libbootfix.
TEST_TOOLS += esp_tool
TEST_TOOL_BINS += $(BUILD)/tests/esp_tool
$(BUILD)/tests/esp_tool: $(BUILD)/tests/tools/esp_tool.o $(LIBBOOTFIX) $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBBOOTFIX) $(LIBPARTITION) $(LIBVHDX) $(LIBS_BOOTFIX) $(LIBS_JSON)

# bootfix/guest-edit.c's fstab/grub.cfg parsers: only guest-edit.o is pulled from libbootfix.
FUZZ_TARGETS += fuzz_guest_text
FUZZ_REPLAY_BINS += $(BUILD)/tests/fuzz_guest_text-replay
$(BUILD)/tests/fuzz_guest_text-replay: $(BUILD)/tests/fuzz/fuzz_guest_text.o $(BUILD)/tests/fuzz/replay-main.o $(LIBBOOTFIX) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBBOOTFIX) $(LIBVHDX) $(LIBS_BOOTFIX) $(LIBS_JSON)
fuzz: $(BUILD)/fuzz/fuzz_guest_text
$(BUILD)/fuzz/fuzz_guest_text: tests/fuzz/fuzz_guest_text.c bootfix/guest-edit.c $(VHDX_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS_JSON)
# tests/tools/guest_tool (tests/diff/guest-*) runs libguestfs inspection and edits: it links libbootfix.
TEST_TOOLS += guest_tool
TEST_TOOL_BINS += $(BUILD)/tests/guest_tool
$(BUILD)/tests/guest_tool: $(BUILD)/tests/tools/guest_tool.o $(LIBBOOTFIX) $(LIBPARTITION) $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBBOOTFIX) $(LIBPARTITION) $(LIBVHDX) $(LIBS_BOOTFIX) $(LIBS_JSON)

# convert/undo-regions-file.c's parser (the --in-place undo record): replay links the one
# object and libvhdx.
FUZZ_TARGETS += fuzz_cvundo
FUZZ_REPLAY_BINS += $(BUILD)/tests/fuzz_cvundo-replay
$(BUILD)/tests/fuzz_cvundo-replay: $(BUILD)/tests/fuzz/fuzz_cvundo.o $(BUILD)/tests/fuzz/replay-main.o $(BUILD)/convert/undo-regions-file.o $(LIBVHDX)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBVHDX) $(LIBS_JSON)
fuzz: $(BUILD)/fuzz/fuzz_cvundo
$(BUILD)/fuzz/fuzz_cvundo: tests/fuzz/fuzz_cvundo.c convert/undo-regions-file.c $(VHDX_SRCS)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -o $@ $^ $(LIBS_JSON)

# ---- fixtures and nested-KVM harness (issue 3) ----
#   make fixtures    guest disks from Debian packages into $(BUILD)/fixtures (cached by recipe hash)
#   make harness     the nested-KVM harness's binaries (CR8 shim for the outer QEMU, kvm-smoke)
#   make check-boot  tests/boot/*.test.sh: every fixture boots, in TCG and under nested KVM
HARNESS_BINS := $(BUILD)/harness/cr8-shim.so $(BUILD)/harness/kvm-smoke
.PHONY: fixtures harness check-boot
fixtures:
	$(Q)BUILD=$(BUILD) tests/fixtures/build.sh

harness: $(HARNESS_BINS)

$(BUILD)/harness/kvm-smoke: tests/harness/kvm-smoke.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

# Preloaded into QEMU, so never sanitized whatever SAN says.
$(BUILD)/harness/cr8-shim.so: tests/harness/cr8-shim.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) -O2 -g -std=gnu11 $(WARN) -D_GNU_SOURCE -shared -fPIC -o $@ $< -ldl

check-boot: $(HARNESS_BINS) fixtures
	$(Q)rc=0; for t in tests/boot/*.test.sh; do BUILD=$(BUILD) $$t || rc=1; done; exit $$rc

check-nodeps: $(HARNESS_BINS) fixtures
# ---- end of issue 3 block ----

# ---- debian12 fixture and the slow suite (issue 7) ----
#   make fixture-debian12  a debootstrapped Debian 12 gen-1 guest (GRUB i386-pc from its own
#                          grub-install) into $(BUILD)/fixtures/debian12.{raw,vhd,vhdx},
#                          cached by recipe hash (tests/fixtures/README.md, "debian12")
#   make check-slow        builds it, then runs tests/slow/*.test.sh through tests/run-all.sh
.PHONY: fixture-debian12 check-slow check-slow-nodeps
fixture-debian12:
	$(Q)BUILD=$(BUILD) tests/fixtures/debian12.sh

check-slow: deps
	$(MAKE) check-slow-nodeps

check-slow-nodeps: $(GENSHIFT) $(TEST_TOOL_BINS) $(HARNESS_BINS) fixture-debian12
	$(Q)BUILD=$(BUILD) TEST_DIRS=tests/slow tests/run-all.sh
# ---- end of issue 7 debian12 block ----

check: deps
	$(MAKE) check-nodeps

.PHONY: check-nodeps
check-nodeps: $(GENSHIFT) $(UNIT_BINS) $(BOOTFIX_UNIT_BINS) $(FUZZ_REPLAY_BINS) $(TEST_TOOL_BINS)
	$(Q)BUILD=$(BUILD) UNIT_BINS="$(UNIT_BINS) $(BOOTFIX_UNIT_BINS)" FUZZ_TARGETS="$(FUZZ_TARGETS)" tests/run-all.sh

deps:
	@if [ "$$(id -u)" = 0 ]; then sh scripts/deps.sh; \
	else echo "make deps: not root, assuming dependencies are installed"; fi

demo: deps
	$(MAKE) $(GENSHIFT) $(HARNESS_BINS) fixtures
	$(Q)BUILD=$(BUILD) scripts/demo.sh

bench: deps
	$(MAKE) $(GENSHIFT)
	$(Q)BUILD=$(BUILD) tests/bench/run.sh

clean:
	rm -rf build build-san

-include $(shell find $(BUILD) -type f -name '*.d' 2>/dev/null)
