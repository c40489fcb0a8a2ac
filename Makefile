# Environments (see docs/architecture.md, "Two environments", and README "Legacy spikingjelly"):
#   .venv         Python 3.11: torch 2.13.0 (CPU, from local disk), spikingjelly 2.0.0,
#                 nir, onnx, onnxruntime, ray (extras interchange and ray),
#                 snntorch 1.0.0, snnc editable
#   .venv-lava    Python 3.10.13: lava-nc 0.10.0, numpy<2, snnc editable without torch
#   .venv-legacy  Python 3.11: torch 2.13.0, spikingjelly 0.0.0.0.12 (the clock_driven API
#                 that 2.0 removed), snnc editable; `snnc compile` moves there by itself
#                 when a model imports spikingjelly.clock_driven
# Each is created once and reused; a stamp file re-runs the install only when the
# packaging files change, so a second `make test` spends its time on the tests alone.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PY311 ?= python3.11
# pyenv provides 3.10.13 on these machines; override PY310=/path/to/python3.10 elsewhere.
PY310 ?= $(shell pyenv prefix 3.10.13 2>/dev/null || echo /nonexistent)/bin/python
PIP_FLAGS ?= --quiet --disable-pip-version-check

VENV := .venv
LAVA := .venv-lava
LEGACY := .venv-legacy
DEPS := pyproject.toml Makefile

.PHONY: help demo test test-compile test-lava test-legacy bench envs clean-envs

help:
	@echo "make demo   compile the shipped examples for loihi2 and check them with refsim and Lava"
	@echo "make test   the whole test suite in both environments (creates them if needed)"
	@echo "make bench  benchmarks: refsim against PyTorch, Lava and onnxruntime against refsim, check --ray scaling (a few minutes)"

$(VENV)/.ready: $(DEPS)
	@test -x $(VENV)/bin/python || $(PY311) -m venv $(VENV)
	$(VENV)/bin/pip install $(PIP_FLAGS) torch==2.13.0
	@# spikingjelly's declared deps pull torchvision and a CUDA torch: take it alone, plus
	@# the one dependency its modules import at load time.
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps spikingjelly==2.0.0
	@# snnTorch (frontends/torch/snntorch.py) likewise: its modules import only torch and
	@# numpy at load time.
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps snntorch==1.0.0
	$(VENV)/bin/pip install $(PIP_FLAGS) "loguru>=0.7,<1" -e ".[torch,data,dev,interchange,ray]"
	@# nirtorch: snnTorch's and Norse's NIR importers (the tests' other runtimes) import it.
	@# norse from its sdist, pure Python: its declared torchvision would pull a CUDA torch.
	$(VENV)/bin/pip install $(PIP_FLAGS) --no-deps "nirtorch>=2.0,<3" norse==1.1.0
	@touch $@

$(LAVA)/.ready: $(DEPS)
	@test -x $(PY310) || { echo "Python 3.10 not found at $(PY310); set PY310=..." >&2; exit 1; }
	@test -x $(LAVA)/bin/python || $(PY310) -m venv $(LAVA)
	$(LAVA)/bin/pip install $(PIP_FLAGS) -e ".[lava,dev]"
	@touch $@

# spikingjelly 0.0.0.0.12 and 0.0.0.0.14 ship the same clock_driven package (neuron, layer,
# functional, surrogate, base: byte for byte), so one legacy release serves code written for
# either. Its declared deps (tqdm, torchvision, a CUDA torch) are not imported by clock_driven.
$(LEGACY)/.ready: $(DEPS)
	@test -x $(LEGACY)/bin/python || $(PY311) -m venv $(LEGACY)
	$(LEGACY)/bin/pip install $(PIP_FLAGS) torch==2.13.0
	$(LEGACY)/bin/pip install $(PIP_FLAGS) --no-deps spikingjelly==0.0.0.0.12
	$(LEGACY)/bin/pip install $(PIP_FLAGS) -e ".[torch,data,dev]"
	@touch $@

envs: $(VENV)/.ready $(LAVA)/.ready $(LEGACY)/.ready

# The shipped examples: MODEL spec and checkpoint per name (examples/checkpoints).
EXAMPLE_MODELS := stbp_resnet=examples/models.py:stbp_resnet \
                  clif_vgg=examples/models.py:clif_vgg \
                  clif_preact_resnet=examples/models.py:clif_preact_resnet \
                  stbp_custom=examples/stbp_custom.py:stbp_custom_net \
                  stbp_timelast=examples/stbp_timelast.py:stbp_timelast_net \
                  clif_legacy=examples/clif_legacy.py:clif_legacy_resnet \
                  stbp_resnet19=examples/models.py:stbp_resnet19 \
                  clif_resnet18=examples/models.py:clif_resnet18
# The built-in data set (snnc/datasets.py) each example is compiled for and checked on,
# digits (1x8x8) unless named here, and each data set's input shape. The deep ResNets take
# the seeds' 3x32x32: digits upsampled.
EXAMPLE_DATA_stbp_resnet19 := digits32
EXAMPLE_DATA_clif_resnet18 := digits32
SHAPE_digits := 1,8,8
SHAPE_digits32 := 3,32,32
# $(call example_data,name=spec): that example's data set.
example_data = $(or $(EXAMPLE_DATA_$(firstword $(subst =, ,$(1)))),digits)
# name=spec@data@shape per example, for the demo loop.
EXAMPLE_RUNS := $(foreach p,$(EXAMPLE_MODELS),\
                  $(p)@$(call example_data,$(p))@$(SHAPE_$(call example_data,$(p))))

# The main job: compile every shipped example for loihi2, then check it with the reference
# simulator and with Lava (fixed_pt and floating_pt) on the digits test split. Stops at the
# first failed check. LAVA_SAMPLES: samples run on Lava per example (about 0.1 s each).
LAVA_SAMPLES ?= 20

demo: $(VENV)/.ready $(LAVA)/.ready $(LEGACY)/.ready
	@for run in $(EXAMPLE_RUNS); do \
	  IFS=@ read -r pair data shape <<< "$$run"; \
	  name=$${pair%%=*}; spec=$${pair#*=}; echo; echo "==== $$name: compile ($$data)"; \
	  $(VENV)/bin/snnc compile $$spec --weights examples/checkpoints/$$name.pt -T 4 \
	    --input-shape $$shape --check-data $$data --check-samples 64 -o build/$$name.snnc; \
	  echo; echo "==== $$name: check with the reference simulator"; \
	  $(VENV)/bin/snnc check build/$$name.snnc --data $$data; \
	  echo; echo "==== $$name: check with Lava"; \
	  $(VENV)/bin/snnc check build/$$name.snnc --data $$data --backend lava \
	    --backend-samples $(LAVA_SAMPLES) --json build/$$name.check.json \
	    --report build/$$name.report; \
	done
	@echo; echo "all shipped examples compiled and passed their checks (reports: build/*.report)"

# pytest exits 5 when it collects no test; make stops on any non-zero exit, so an empty
# run fails the build instead of passing silently.
test: test-compile test-lava test-legacy

# The compile-side tests also drive Lava through a subprocess, so both envs must exist.
test-compile: $(VENV)/.ready $(LAVA)/.ready $(LEGACY)/.ready
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest tests/core tests/compile

test-lava: $(LAVA)/.ready
	$(LAVA)/bin/python -m pytest tests/core tests/lava

# Models written for the legacy spikingjelly API, against the legacy package itself; they
# drive Lava through a subprocess too.
test-legacy: $(LEGACY)/.ready $(LAVA)/.ready
	$(LEGACY)/bin/python -m pytest tests/legacy

bench: $(VENV)/.ready $(LAVA)/.ready
	$(VENV)/bin/python benchmarks/refsim.py
	$(VENV)/bin/python benchmarks/lava.py
	$(VENV)/bin/python benchmarks/onnx_runtime.py
	$(VENV)/bin/python benchmarks/check_scaling.py

clean-envs:
	rm -rf $(VENV) $(LAVA) $(LEGACY)
