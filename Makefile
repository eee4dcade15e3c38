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

.PHONY: notebooks smoke test test-browser lint baseline benchmarks clean teaching

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

# The smoke baseline from measured spread: every notebook at 5 seeds under three CPU-kernel
# settings (torch's portable kernels, this processor's best, and the AVX2 pin that smoke runs
# and CI use), offline, on an empty cache.
# NB="01 05" rebuilds only those notebooks' entries.
BASELINE_SEEDS ?= 0-4
NB ?=
baseline: $(STAMP)
	MICROSCOPY_OFFLINE=1 MICROSCOPY_DATA_DIR=$$(mktemp -d) $(PY) -m helpers.run $(NB) --smoke \
		--seeds $(BASELINE_SEEDS) --cpu-kernels default,native,pinned --jobs $(JOBS) \
		--out runs/baseline --update-baseline tests/baselines/smoke.json

benchmarks: $(STAMP)
	$(PY) benchmarks/rvae_speed.py
	$(PY) benchmarks/rvae_step_costs.py
	$(PY) benchmarks/segmentation_noise.py

# The teaching edition: student notebooks (solutions replaced by stubs) and instructor
# notebooks, generated from the exercises marked in notebooks/, into runs/teaching/.
TEACHING_OUT ?= runs/teaching
teaching: $(STAMP)
	$(PY) -m helpers.teach build --out $(TEACHING_OUT)

clean:
	rm -rf runs .pytest_cache .ruff_cache

# The notebooks in a real JupyterLab, driven by headless Chromium through Playwright
# (tests/browser/). Chromium comes from Debian's packages (installed here when missing and we
# are root on Debian) or from CHROMIUM_PATH; Playwright's browser downloads are never used.
CHROMIUM_PATH ?= /usr/bin/chromium
test-browser: $(STAMP)
	@if [ ! -x "$(CHROMIUM_PATH)" ]; then \
	  if [ "$(CHROMIUM_PATH)" = /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && [ -f /etc/debian_version ]; then \
	    echo "installing Debian's chromium"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "no browser at $(CHROMIUM_PATH): install chromium (apt-get install chromium) or set CHROMIUM_PATH" >&2; exit 1; \
	  fi; \
	fi
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q "playwright>=1.40"
	CHROMIUM_PATH="$(CHROMIUM_PATH)" $(PY) -m pytest tests/browser/jupyterlab_browser.py -v
