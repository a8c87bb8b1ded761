# mk/httpc.mk - tests/drivers/httpc_drive: a program of its own (not hubd) that runs
# daemon/net/httpc.c from a script, for tests/integration/test_httpc.py. Built by `make`
# and `make asan` in $(BUILD)/tests/drivers/, where neither the unit-test pattern rule
# ($(BUILD)/tests/%) nor tests/run (which runs $(BUILD)/tests/test_*) takes it for a
# cmocka binary: the explicit rule below wins over the pattern.

HTTPC_DRIVE = $(BUILD)/tests/drivers/httpc_drive

$(HTTPC_DRIVE): $(BUILD)/tests/drivers/httpc_drive.o $(BUILD)/daemon/net/httpc.o \
		$(BUILD)/daemon/net/tcpwrite.o \
		$(LLHTTP_OBJ) $(LIBCORE)
	@mkdir -p $(dir $@)
	$(QUIET_LINK)$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS) -lm

all: $(HTTPC_DRIVE)
