# Set-up and everyday commands. `make demo` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PRODUCER := 001191110102MACQD9K64010000
DEMO_MEDIA := $(wildcard samples/*.jpg samples/*.png samples/*.wav samples/*.flac samples/*.mp3 samples/*.mp4)

.PHONY: demo test lint bench bench-quick venv install install-test install-bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# Editable installs: code changes need no reinstall, only pyproject.toml changes do (the stamps).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## Label the photos, audio and MP4 in samples/ into demo-out/, verify originals and copies, then show every layer on the photo.
demo: install
	@rm -rf demo-out && mkdir -p demo-out/keys demo-out/all-layers
	@for f in $(DEMO_MEDIA); do \
	  $(BIN)/aigc label "$$f" "demo-out/$$(basename "$$f")" --producer $(PRODUCER) \
	    --produce-id "demo-$$(basename "$$f" | tr . -)" || exit 1; \
	done
	@echo "--- verify (originals, then labeled copies) ---"
	@$(BIN)/aigc verify $(DEMO_MEDIA) demo-out/*.*
	@echo "--- every layer on the photo: watermark, visible mark, metadata, C2PA (test PKI) ---"
	@$(BIN)/aigc keygen demo-out/keys/wm.key
	@$(BIN)/aigc keys init demo-out/keys/pki
	@$(BIN)/aigc label samples/photo.jpg demo-out/all-layers/photo.jpg --producer $(PRODUCER) --produce-id demo-all-1 \
	  --layers watermark,visible,metadata,c2pa --key-file demo-out/keys/wm.key \
	  --sign-cert demo-out/keys/pki/signer-chain.pem --sign-key demo-out/keys/pki/signer.key.pem
	@$(BIN)/aigc verify demo-out/all-layers/photo.jpg --key-file demo-out/keys/wm.key \
	  --trust-anchors demo-out/keys/pki/trust-anchors.pem
	@echo "--- the same, as JSON ---"
	@$(BIN)/aigc verify --json demo-out/all-layers/photo.jpg --key-file demo-out/keys/wm.key \
	  --trust-anchors demo-out/keys/pki/trust-anchors.pem

## Install with the test extra and run the suite: one worker per core, at most 4 (pytest-xdist; a test
## file stays on one worker, so its module fixtures are made once). PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= auto
test: install-test
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile

install-bench: install-test
	$(BIN)/python -m pip install -q -e '.[test,bench]'

## Benchmarks (write their tables into benchmarks/RESULTS*.md). bench-quick: a few minutes.
bench-quick: install-bench
	$(BIN)/python benchmarks/metadata_label.py --quick
	$(BIN)/python benchmarks/watermark_speed.py --quick
	$(BIN)/python benchmarks/watermark_robustness.py --quick
	$(BIN)/python benchmarks/watermark_geometry.py --quick
	$(BIN)/python benchmarks/watermark_false_positives.py --quick
	$(BIN)/python benchmarks/robustness_batch.py --quick

bench: install-bench
	$(BIN)/python benchmarks/metadata_label.py --write
	$(BIN)/python benchmarks/watermark_speed.py --write
	$(BIN)/python benchmarks/watermark_robustness.py --write
	$(BIN)/python benchmarks/watermark_geometry.py --write
	$(BIN)/python benchmarks/watermark_false_positives.py --write
	$(BIN)/python benchmarks/robustness_batch.py --write

lint: install-test
	$(BIN)/ruff check .

clean:
	rm -rf demo-out build dist *.egg-info .pytest_cache .ruff_cache
