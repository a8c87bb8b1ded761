# mk/anon.mk - the anonymizer's build: its name lists compiled into libhubcore.a, the
# eval's driver $(BUILD)/tests/anon/run,
# `make bench-anon` (bench/anon.c: MB/s and messages/s against a reference pass) and
# `make fuzz-anon` (tests/fuzz/fuzz_anon.c under libFuzzer, clang; FUZZ_SECONDS, 60 by default).

ANON_DATA := $(sort $(wildcard anonymizer/data/*.txt))
ANON_GEN := $(BUILD)/gen/anon_data.c

$(ANON_GEN): $(ANON_DATA) $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(QUIET_GEN)$(BUILD)/embed -i anonymizer/anon_data.h hub_anon_data \
		$(ANON_DATA) > $@.tmp && mv $@.tmp $@

$(LIBCORE): $(ANON_GEN:%.c=%.o)

# tests/anon/eval's driver: pseudonymizes lines with a new vault when asked (tests/anon/run.c).
ANON_RUN = $(BUILD)/tests/anon/run
all: $(ANON_RUN)
$(ANON_RUN): $(BUILD)/tests/anon/run.o $(LIBCORE)
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $^ -lm

ANON_BENCH = $(BUILD)/bench/anon
$(ANON_BENCH): $(BUILD)/bench/anon.o $(LIBCORE)
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $^ -lm

.PHONY: bench-anon fuzz-anon
bench-anon:
	$(Q)$(MAKE) --no-print-directory $(ANON_BENCH)
	$(Q)$(ANON_BENCH) $(BENCH_ANON_ARGS)

# libFuzzer wants clang and its own instrumentation: a separate build of the pure sources.
FUZZ_BUILD = build-fuzz
FUZZ_CC = clang
FUZZ_FLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=all -I. -D_GNU_SOURCE
FUZZ_SRC = tests/fuzz/fuzz_anon.c tests/fuzz/anon_check.c $(wildcard anonymizer/*.c) \
	lib/buf.c lib/mem.c lib/pool.c lib/utf8.c lib/err.c
FUZZ_SECONDS ?= 60
FUZZ_CORPUS = tests/fuzz/corpus/anon

$(FUZZ_BUILD)/fuzz_anon: $(FUZZ_SRC) $(wildcard anonymizer/*.h tests/fuzz/*.h) \
		$(BUILD)/gen/anon_data.c
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(FUZZ_SRC) $(BUILD)/gen/anon_data.c

# New inputs go to $(FUZZ_BUILD)/corpus; the committed corpus stays small (merge by hand).
fuzz-anon: $(FUZZ_BUILD)/fuzz_anon
	@mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/artifacts
	$(Q)$(FUZZ_BUILD)/fuzz_anon -max_total_time=$(FUZZ_SECONDS) -max_len=2048 \
		-timeout=2 -artifact_prefix=$(FUZZ_BUILD)/artifacts/ \
		$(FUZZ_BUILD)/corpus $(FUZZ_CORPUS)

# The corpus replay and the generated conversations link the fuzz target's checks (before
# the library, for the linker).
$(BUILD)/tests/test_anon_corpus $(BUILD)/tests/test_anon_props: $(BUILD)/tests/%: \
		$(BUILD)/tests/unit/%.o $(BUILD)/tests/fuzz/anon_check.o $(LIBCORE)
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $^ -lcmocka -lcrypto -lm
