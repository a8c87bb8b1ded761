# mk/eval-anon.mk - `make eval-anon`: the anonymizer's quality on the labelled corpus
# tests/anon/corpus.jsonl (tests/anon/README.md): recall per type, precision, values that
# survived into the output, against the targets of issue 6; exits non-zero when one is missed.
#   make eval-anon ANON_EVAL_FLAGS=--verbose     also lists every miss and false hit
ANON_EVAL_FLAGS ?=

.PHONY: eval-anon
eval-anon: all
	$(Q)python3 tests/anon/eval --hubctl $(HUBCTL) $(ANON_EVAL_FLAGS)
