# mk/bench.mk - the load client of bench/fanout (a bench-only program: libuv and libcrypto,
# none of hubd's modules). `make bench` builds it; `make bench-client` builds it alone.

FANOUT_CLIENT = $(BUILD)/bench/fanout_client
FANOUT_LIBS := $(shell $(PKG_CONFIG) --libs libuv libcrypto 2>/dev/null)

$(FANOUT_CLIENT): bench/fanout_client.c $(BUILD)/FLAGS
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(ALL_CFLAGS) $(WARN) -MMD -MP -o $@ $< $(ALL_LDFLAGS) $(FANOUT_LIBS)

bench-client: $(FANOUT_CLIENT)
.PHONY: bench-client
