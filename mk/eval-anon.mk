# mk/eval-anon.mk - `make eval-anon`: the anonymizer's quality on the labelled corpora
# tests/anon/corpus.jsonl and hard.jsonl and the conversations (tests/anon/README.md): the
# protected rate per type, precision, values that survived into the output, the protected
# rate per conversation, against the targets of issues 6 and 16; non-zero when one is missed.
#   make eval-anon ANON_EVAL_FLAGS=--verbose     also lists every miss and false hit
ANON_EVAL_FLAGS ?=

.PHONY: eval-anon
eval-anon: all
	$(Q)python3 tests/anon/eval --run $(ANON_RUN) $(ANON_EVAL_FLAGS)
