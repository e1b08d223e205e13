# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv and install everything pinned.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c requirements/constraints.txt
PLUGINS := plugins/maestro-basic-pitch plugins/maestro-synctoolbox plugins/maestro-fluidsynth plugins/maestro-ray \
	plugins/maestro-parangonar plugins/maestro-transkun
DEMO_DIR ?= demo-output

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml requirements/constraints.txt $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PIP) --upgrade pip setuptools wheel
	$(PIP) torch==2.13.0
	$(PIP) --no-build-isolation -e '.[test]' $(addprefix -e ,$(PLUGINS))
	# basic-pitch 0.4.0 would pull TensorFlow: install it without dependencies (its ONNX model is used).
	$(PIP) --no-deps basic-pitch==0.4.0
	# transkun 2.0.1 (weights in the wheel) would pull torchaudio (no build for torch 2.13), tensorboard, seaborn, pydub,
	# sox, ncls, moduleconf, torch-optimizer: inference needs none of them (plugins/maestro-transkun/README.md).
	$(PIP) --no-deps transkun==2.0.1
	# tinysoundfont 0.3.7 (the embedded renderer) requires pyaudio only for live playback, which we never use.
	$(PIP) --no-deps tinysoundfont==0.3.7
	touch $@

install: $(VENV)/.installed

demo: install
	mkdir -p $(DEMO_DIR)
	$(BIN)/maestro generate --composer Chopin -n 4 --seconds 20 --seed 1 --out-dir $(DEMO_DIR) --overwrite \
		> $(DEMO_DIR)/generated.txt
	head -n 1 $(DEMO_DIR)/generated.txt | $(BIN)/maestro render --out-dir $(DEMO_DIR) --overwrite

lint: install
	$(BIN)/ruff check .

test: install
	$(BIN)/python -m pytest -q

bench: install
	# common.py is the benchmarks' shared module; recovery_evidence.py reads informed_transcription.py's --cache
	for script in benchmarks/*.py; do case $$script in *common.py|*recovery_evidence.py) continue;; esac; \
		$(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_DIR)
