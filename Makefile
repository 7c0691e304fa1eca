# Two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint bench clean chromium

$(BIN)/tf2torch: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU wheel on disk (a bare `torch` would pull a multi-GB CUDA build)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python tools/install_tf_keras.py
	touch $@

venv: $(BIN)/tf2torch

demo: venv
	$(BIN)/tf2torch demo

# Published TFLite models that a PyPI wheel ships, for tests/test_tflite_published.py
MEDIAPIPE := .cache/mediapipe
# MediaPipe's own runtime, in a venv of its own: the reference for its custom-op models
MEDIAPIPE_RUNTIME := .cache/mediapipe-runtime

# converters mutated after the tests (tests/mutation.py); the seed rotates daily, the full
# run is `python tools/mutate.py` (or `pytest -m slow tests/test_mutation.py`)
MUTATE_SAMPLE ?= 12
MUTATE_SEED ?= $(shell date +%j)

test: venv chromium
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/python tools/fetch_mediapipe_models.py $(MEDIAPIPE)
	$(BIN)/python -m tf2torch.references.mediapipe_runtime $(MEDIAPIPE_RUNTIME)
	TF2TORCH_MEDIAPIPE_DIR=$(MEDIAPIPE) TF2TORCH_MEDIAPIPE_PYTHON=$(MEDIAPIPE_RUNTIME)/bin/python \
		$(BIN)/python -m pytest -q -m "not slow" --forbid-skips \
			--mutate --mutate-sample $(MUTATE_SAMPLE) --mutate-seed $(MUTATE_SEED) --mutate-require-all

# The browser tests drive Debian's chromium through Playwright, which never downloads a browser
# of its own here. Installed when missing and we are root (CI is); otherwise say how, and the
# browser tests fail naming it (TF2TORCH_SKIP_BROWSER=1 skips them on purpose).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium for the browser tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends chromium >/dev/null; \
	else \
		echo "chromium is missing: sudo apt-get install chromium (the browser tests need it)"; \
	fi

bench: venv
	$(BIN)/python benchmarks/convert.py

clean:
	rm -rf $(VENV) .pytest_cache
