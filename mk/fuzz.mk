# mk/fuzz.mk - the libFuzzer targets of every parser in the tree besides the anonymizer's
# (mk/anon.mk): tests/fuzz/fuzz_<target>.c, seeds in tests/fuzz/<target>/corpus/, minimized
# crashes kept in tests/fuzz/<target>/regress/, a dictionary in tests/fuzz/<target>/ when one
# helps. tests/fuzz/README.md says what each target drives and checks.
#   make fuzz                 builds every target (and fuzz_anon) in build-fuzz/: clang,
#                             -fsanitize=fuzzer,address,undefined
#   make fuzz-<target>        builds one and runs it for FUZZ_SECONDS (60) in this process
#                             (one core); new inputs go to build-fuzz/corpus/<target>/,
#                             crashes to build-fuzz/artifacts/<target>/; FUZZ_ARGS adds flags
# The same sources are also linked by the normal build (gcc; build/ and build-asan/) as
# $(BUILD)/tests/test_fuzz_<target> with tests/fuzz/replay.c's main: `make test` replays
# corpus/ and regress/ through each target's checks.

FUZZ_TARGETS = http json jwt router whatsapp telegram instagram send_result tg_updates \
	inbox bus config webchat

# What each target links besides its tests/fuzz/fuzz_<target>.c and the pure core.
FUZZ_EXTRA_http = daemon/net/http.c daemon/net/conns.c daemon/net/tcpwrite.c \
	daemon/core/metrics.c
FUZZ_EXTRA_inbox = daemon/inbox/inbox.c tests/fuzz/fakepg.c
FUZZ_EXTRA_bus = daemon/data/bus.c daemon/core/metrics.c tests/fuzz/fakepg.c
FUZZ_EXTRA_whatsapp = tests/fuzz/event_check.c
FUZZ_EXTRA_telegram = tests/fuzz/event_check.c
FUZZ_EXTRA_instagram = tests/fuzz/event_check.c
FUZZ_EXTRA_tg_updates = tests/fuzz/event_check.c
FUZZ_UV_LIBS := $(shell $(PKG_CONFIG) --libs libuv 2>/dev/null)
FUZZ_LIBS_http = $(FUZZ_UV_LIBS)
FUZZ_LIBS_bus = $(FUZZ_UV_LIBS)
# Longest input libFuzzer makes (-max_len) per target; 16 KiB otherwise.
FUZZ_MAXLEN_config = 65536
FUZZ_MAXLEN_whatsapp = 65536
FUZZ_MAXLEN_instagram = 65536
FUZZ_MAXLEN_tg_updates = 65536
FUZZ_MAXLEN_json = 65536

FUZZ_SECONDS ?= 60
FUZZ_ARGS ?=
FUZZ_DIR = build-fuzz
FUZZ_OBJ = $(FUZZ_DIR)/obj
FUZZ_CLANG = clang
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
	-I. -isystem $(LLHTTP_INC) $(PKG_CFLAGS) -D_GNU_SOURCE
FUZZ_LDFLAGS = -fsanitize=fuzzer,address,undefined
FUZZ_CORE_SRC := $(sort $(wildcard lib/*.c config/*.c adapters/*.c))
FUZZ_CORE = $(FUZZ_OBJ)/libhubcore.a
FUZZ_BINS = $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_REPLAY = $(FUZZ_TARGETS:%=$(BUILD)/tests/test_fuzz_%)

fuzz_srcs = tests/fuzz/fuzz_$(1).c $(FUZZ_EXTRA_$(1))
fuzz_llhttp = $(if $(filter http,$(1)),$(2)/llhttp/api.o $(2)/llhttp/http.o $(2)/llhttp/llhttp.o)

.PHONY: fuzz $(FUZZ_TARGETS:%=fuzz-%)
fuzz: $(FUZZ_BINS) $(FUZZ_DIR)/fuzz_anon

# The replays are part of every build, as the unit tests are.
all: $(FUZZ_REPLAY)

$(FUZZ_OBJ)/FLAGS: FORCE
	@mkdir -p $(FUZZ_OBJ)
	@echo '$(FUZZ_CLANG) $(FUZZ_CFLAGS) $(FUZZ_LDFLAGS)' > $@.tmp
	@if cmp -s $@ $@.tmp; then rm $@.tmp; else mv $@.tmp $@; fi

$(FUZZ_OBJ)/%.o: %.c $(FUZZ_OBJ)/FLAGS
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(FUZZ_CLANG) $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

# llhttp is fuzzed with the server: instrumented too, without our warnings.
$(FUZZ_OBJ)/llhttp/%.o: $(LLHTTP_DIR)/%.c $(FUZZ_OBJ)/FLAGS
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(FUZZ_CLANG) $(FUZZ_CFLAGS) -I$(LLHTTP_INC) -w -c -o $@ $<

$(FUZZ_CORE): $(FUZZ_CORE_SRC:%.c=$(FUZZ_OBJ)/%.o)
	@rm -f $@
	$(QUIET_AR)$(AR) rcs $@ $^

define FUZZ_RULES
$(FUZZ_DIR)/fuzz_$(1): $(patsubst %.c,$(FUZZ_OBJ)/%.o,$(call fuzz_srcs,$(1))) \
		$(call fuzz_llhttp,$(1),$(FUZZ_OBJ)) $(FUZZ_CORE)
	$$(QUIET_LINK)$(FUZZ_CLANG) $(FUZZ_LDFLAGS) -o $$@ $$^ $(FUZZ_LIBS_$(1)) -lcrypto -lm

fuzz-$(1): $(FUZZ_DIR)/fuzz_$(1)
	@mkdir -p $(FUZZ_DIR)/corpus/$(1) $(FUZZ_DIR)/artifacts/$(1)
	$$(Q)$(FUZZ_DIR)/fuzz_$(1) -max_total_time=$$(FUZZ_SECONDS) \
		-max_len=$(or $(FUZZ_MAXLEN_$(1)),16384) -timeout=5 \
		$(if $(wildcard tests/fuzz/$(1)/$(1).dict),-dict=tests/fuzz/$(1)/$(1).dict) \
		-artifact_prefix=$(FUZZ_DIR)/artifacts/$(1)/ $$(FUZZ_ARGS) \
		$(FUZZ_DIR)/corpus/$(1) tests/fuzz/$(1)/corpus $(wildcard tests/fuzz/$(1)/regress)

$(BUILD)/tests/test_fuzz_$(1): $(BUILD)/tests/fuzz/replay.o \
		$(patsubst %.c,$(BUILD)/%.o,$(call fuzz_srcs,$(1))) \
		$(call fuzz_llhttp,$(1),$(BUILD)) $(LIBCORE)
	@mkdir -p $$(dir $$@)
	$$(QUIET_LINK)$$(CC) $$(ALL_LDFLAGS) -o $$@ $$^ -lcmocka $(FUZZ_LIBS_$(1)) -lcrypto -lm
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULES,$(t))))

-include $(shell find $(FUZZ_OBJ) -name '*.d' 2>/dev/null)
