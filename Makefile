# The two commands of the README:
#   make notebooks   run every notebook end to end (default scale) into runs/latest/
#   make test        lint, unit tests, and every notebook at smoke scale against the baseline
# Both create .venv and install what they need on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel on these machines; override (e.g. TORCH_SPEC="torch") elsewhere.
TORCH_SPEC ?= torch==2.13.0
JOBS ?= 2
OUT ?= runs/latest
STAMP := $(VENV)/.installed

.PHONY: notebooks smoke test lint baseline benchmarks clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[notebooks,test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

notebooks: $(STAMP)
	$(PY) -m helpers.run --out $(OUT) --jobs $(JOBS)

smoke: $(STAMP)
	$(PY) -m helpers.run --smoke --out runs/smoke --jobs $(JOBS) --compare tests/baselines/smoke.json

lint: $(STAMP)
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

baseline: $(STAMP)
	$(PY) -m helpers.run --smoke --out runs/smoke --jobs $(JOBS) --update-baseline tests/baselines/smoke.json

benchmarks: $(STAMP)
	$(PY) benchmarks/rvae_speed.py
	$(PY) benchmarks/rvae_step_costs.py
	$(PY) benchmarks/segmentation_noise.py

clean:
	rm -rf runs .pytest_cache .ruff_cache
