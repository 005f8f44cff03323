# pbkit: `make demo` (the main job) and `make test` (the suite), each setting up what it needs.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The CPU wheel of torch, pinned here only: pyproject keeps a range for users.
TORCH_PIN := torch==2.13.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm

.PHONY: all venv toolchain demo test fuzz lint format golden mlperf clean help
all: help

help:
	@echo "make demo       shipped model -> C -> firmware -> QEMU STM32F405 -> accuracy over serial"
	@echo "make test       the test suite (sets up the venv and the toolchain first; runs the bounded fuzz harness)"
	@echo "make fuzz       long ASan/UBSan fuzz run of the firmware's frame, COBS and protocol code (FUZZ_SEED,"
	@echo "                FUZZ_ITERATIONS, FUZZ_SECONDS of CPU time; prints the seed that reproduces a failure)"
	@echo "make toolchain  install $(APT_PACKAGES) through apt when missing"
	@echo "make venv       Python environment in $(VENV) with CPU torch"
	@echo "make lint       ruff and pyright (every import resolves; basic type checks: pyproject.toml)"
	@echo "make format     clang-format (pinned wheel, .clang-format) over firmware/ C; make test checks it"
	@echo "make golden     refresh the checked-in golden export (tests/golden) after a codegen change"
	@echo "make mlperf     MLPerf Tiny runner vs the shipped model in QEMU, 200 ic01 images (needs ../shared/cifar10)"

$(VENV)/.stamp: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (pbkit needs Python >= 3.10; set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet $(TORCH_PIN) || $(PIP) install --quiet $(TORCH_PIN) --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install --quiet -e '.[dev,platformio,mlperf,yardstick]'
	touch $@

venv: $(VENV)/.stamp

toolchain:
	@missing=""; \
	command -v arm-none-eabi-gcc >/dev/null || missing="$$missing gcc-arm-none-eabi"; \
	[ -e /usr/lib/arm-none-eabi/newlib/libc.a ] || [ -e /usr/lib/arm-none-eabi/lib/libc.a ] || missing="$$missing libnewlib-arm-none-eabi"; \
	command -v qemu-system-arm >/dev/null || missing="$$missing qemu-system-arm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if ! command -v apt-get >/dev/null; then \
	    echo "error: apt-get not found; install$$missing with your package manager"; exit 1; fi; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing \
	  || { echo "error: could not install$$missing (needs root or sudo, and the Debian archive)"; exit 1; }; \
	fi
	@arm-none-eabi-gcc --version | head -1; qemu-system-arm --version | head -1

demo: venv toolchain
	$(VENV)/bin/pbkit demo --report report.json

test: venv toolchain
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright
	$(PY) -m pytest -q

# `make test` runs the same harness bounded (seed 1, 30,000 inputs: tests/test_fuzz.py).
FUZZ_SEED ?= $(shell date +%s)
FUZZ_ITERATIONS ?= 5000000
FUZZ_SECONDS ?= 0
fuzz:
	@command -v gcc >/dev/null || { echo "error: gcc not found (Debian: apt-get install gcc)"; exit 1; }
	$(MAKE) -f firmware/host/fuzz.mk run SEED=$(FUZZ_SEED) ITERATIONS=$(FUZZ_ITERATIONS) SECONDS_MAX=$(FUZZ_SECONDS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pyright

# Rewrites firmware/ C in the one style; tests/test_c_format.py (in make test) fails on any file that differs.
# scripts/c_format.py's FORMAT_PENDING lists the folders left out for now.
format: venv
	$(PY) scripts/c_format.py

golden: venv
	$(PY) -m tests.golden

mlperf: venv toolchain
	$(PY) bench/mlperf_runner.py --json build/mlperf.json

clean:
	rm -rf build out report.json report.images.jsonl report.*.json report.*.images.jsonl .pytest_cache
