# Bayge Hub - one non-recursive Makefile (as git's).
#   make            build/hubd, build/hubctl and the unit tests
#   make asan       the same in build-asan/ with AddressSanitizer and UBSan
#   make run        install what is missing, build, start PostgreSQL/Redis/hubd under ./var/
#   make test       the same set-up, then every test; last line "tests: N passed, N failed"
#   make bench      benchmarks (not part of make test)
#   make chaos      the scale-out set-up killed piece by piece under load (tests/chaos)
# Quiet unless V=1.

BUILD ?= build
SAN ?= 0
CC ?= cc
PKG_CONFIG ?= pkg-config

ifeq ($(V),1)
Q =
QUIET_CC =
QUIET_LINK =
QUIET_AR =
QUIET_GEN =
else
Q = @
QUIET_CC = @echo '   CC   ' $@;
QUIET_LINK = @echo '   LINK ' $@;
QUIET_AR = @echo '   AR   ' $@;
QUIET_GEN = @echo '   GEN  ' $@;
endif

PKGS = libuv libwebsockets hiredis libpq openssl
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

WARN = -Wall -Wextra -Werror -Wformat=2 -Wmissing-prototypes -Wshadow -Wvla
OPT = -std=gnu11 -O2 -g -fno-strict-aliasing
ifeq ($(SAN),1)
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
OPT = -std=gnu11 -O1 -g -fno-strict-aliasing
endif
LLHTTP_DIR = /usr/share/llhttp
LLHTTP_INC = /usr/share/include/llhttp
ALL_CFLAGS = $(OPT) $(SANFLAGS) -I. -I$(BUILD)/gen -isystem $(LLHTTP_INC) $(PKG_CFLAGS) \
	-D_GNU_SOURCE $(CFLAGS)
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)

# The pure core: no libuv, libpq, lws or hiredis (a call to one fails the link of the
# unit tests, not a review).
CORE_SRC := $(sort $(wildcard lib/*.c config/*.c anonymizer/*.c adapters/*.c assistant/*.c))
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
# daemon/ is one folder a room (scripts/check-layers names them); daemon/hubd.c holds hubd's
# main(), daemon/ctl/ is hubctl (its main() and its commands); every other room links into
# both.
DAEMON_ALL := $(sort $(wildcard daemon/*.c daemon/*/*.c))
CTL_SRC := $(filter daemon/ctl/%,$(DAEMON_ALL))
DAEMON_SRC := $(filter-out daemon/hubd.c $(CTL_SRC),$(DAEMON_ALL))
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
CTL_OBJ := $(CTL_SRC:%.c=$(BUILD)/%.o)
LLHTTP_OBJ := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
GEN_SRC := $(BUILD)/gen/embedded_migrations.c $(BUILD)/gen/embedded_web.c \
	   $(BUILD)/gen/embedded_api.c
GEN_OBJ := $(GEN_SRC:%.c=%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
MIGRATIONS := $(sort $(wildcard db/migrations/*.sql))
# The inbox page, served by daemon/inbox/web.c.
WEB_FILES := $(sort $(wildcard web/*.html web/*.css web/*.js web/*.svg))

LIBCORE = $(BUILD)/libhubcore.a
HUBD = $(BUILD)/hubd
HUBCTL = $(BUILD)/hubctl

all: $(HUBD) $(HUBCTL) $(UNIT_BIN)
.PHONY: all asan run cluster chaos test unit bench clean deps golden FORCE

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 all

# Everything rebuilds when the flags change.
$(BUILD)/FLAGS: FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(ALL_CFLAGS) $(WARN) $(ALL_LDFLAGS) $(PKG_LIBS)' > $@.tmp
	@if cmp -s $@ $@.tmp; then rm $@.tmp; else mv $@.tmp $@; fi

$(BUILD)/%.o: %.c $(BUILD)/FLAGS
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) $(WARN) -MMD -MP -c -o $@ $<

# Debian's llhttp sources: our sanitizer flags, not our warnings.
$(BUILD)/llhttp/%.o: $(LLHTTP_DIR)/%.c $(BUILD)/FLAGS
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) $(OPT) $(SANFLAGS) -I$(LLHTTP_INC) -w -c -o $@ $<

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c $(BUILD)/FLAGS
	$(QUIET_CC)$(CC) $(ALL_CFLAGS) -I. -c -o $@ $<

$(BUILD)/embed: scripts/embed.c
	@mkdir -p $(dir $@)
	$(QUIET_CC)$(CC) -O1 -o $@ $<

# the folder too: a migration taken away changes it, not the files left
$(BUILD)/gen/embedded_migrations.c: $(MIGRATIONS) db/migrations $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(QUIET_GEN)$(BUILD)/embed hub_embedded_migrations $(MIGRATIONS) > $@

$(BUILD)/gen/embedded_web.c: $(WEB_FILES) $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(QUIET_GEN)$(BUILD)/embed hub_embedded_web $(WEB_FILES) > $@

# The OpenAPI description of /api/v1, served by daemon/admin/openapi.c.
$(BUILD)/gen/embedded_api.c: api/openapi.json $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(QUIET_GEN)$(BUILD)/embed hub_embedded_api api/openapi.json > $@

$(LIBCORE): $(CORE_OBJ)
	@rm -f $@
	$(QUIET_AR)$(AR) rcs $@ $^

$(HUBD): $(BUILD)/daemon/hubd.o $(DAEMON_OBJ) $(GEN_OBJ) $(LLHTTP_OBJ) $(LIBCORE)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

$(HUBCTL): $(CTL_OBJ) $(DAEMON_OBJ) $(GEN_OBJ) $(LLHTTP_OBJ) $(LIBCORE)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

# Unit tests of the pure modules link only the core, cmocka and libcrypto.
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBCORE)
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $^ -lcmocka -lcrypto -lm

deps:
	$(Q)scripts/deps.sh

unit: all
	$(Q)tests/run --unit-only --build $(BUILD)

test: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)$(MAKE) --no-print-directory asan
	$(Q)tests/run --build build --asan-build build-asan

run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)scripts/run-dev.sh

# make run's set-up as the README's scale-out section deploys it (scripts/cluster.sh);
# make cluster PATRONI=1: PostgreSQL as three Patroni nodes with etcd.
cluster: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)CLUSTER=1 scripts/run-dev.sh

# the scale-out set-up under faults (tests/chaos; not part of make test: about 2-3 minutes)
chaos: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tests/chaos

bench: deps
	$(Q)$(MAKE) --no-print-directory all bench-client
	$(Q)bench/run
	$(Q)bench/ingest_ab
	$(Q)bench/fanout --instances 1,$(shell nproc)
	$(Q)bench/outbound
	$(Q)bench/ai
	$(Q)bench/ai --pin --sql-answers 0
	$(Q)bench/webchat

clean:
	rm -rf build build-asan build-fuzz

-include mk/*.mk
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
.SECONDARY:
