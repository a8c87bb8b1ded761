# mk/golden.mk - `make golden`: regenerates every tests/fixtures/<platform>/NAME.expected.jsonl
# from `$(BUILD)/hubctl parse <platform> NAME.json` (tests/integration/test_golden.py compares
# them byte for byte). Review the diff (git diff tests/fixtures) before committing it.
# A platform hubctl does not know yet (exit 2) is skipped with a warning; a body it refuses
# (exit 1) stops the run and leaves the old expected file.

golden:
	$(Q)$(MAKE) --no-print-directory $(HUBCTL)
	$(Q)n=0; \
	for f in tests/fixtures/*/*.json; do \
		platform=$$(basename $$(dirname $$f)); \
		out=$${f%.json}.expected.jsonl; \
		$(HUBCTL) parse $$platform $$f > $$out.tmp 2>$$out.err; rc=$$?; \
		if [ $$rc -eq 2 ]; then \
			echo "golden: skipped $$f: $$(cat $$out.err)" >&2; \
			rm -f $$out.tmp $$out.err; continue; \
		elif [ $$rc -ne 0 ]; then \
			echo "golden: $(HUBCTL) parse $$platform $$f failed:" >&2; \
			cat $$out.err >&2; rm -f $$out.tmp $$out.err; exit 1; \
		fi; \
		rm -f $$out.err; mv $$out.tmp $$out; n=$$((n + 1)); \
	done; \
	echo "golden: $$n expected files written; review: git diff --stat tests/fixtures"
