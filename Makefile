# One-command set-up: every target installs what it needs into the project-local .venv.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: dashboard notebooks test browser benchmarks models clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch 2.13.0 is a local CPU wheel on this kind of machine; any other version pulls CUDA builds.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[models,app,concepts,scale,test]"
	touch $(STAMP)

## dashboard: set up, then serve the dashboard on the built-in data at http://127.0.0.1:5006/atlas
dashboard: $(STAMP)
	$(VENV)/bin/latentatlas serve

## notebooks: set up, then open notebooks/ in JupyterLab at http://127.0.0.1:8888/lab (this machine only)
notebooks: $(STAMP)
	# JupyterLab refuses to run as root unless told: containers often are root
	$(VENV)/bin/jupyter lab --config notebooks/jupyter_lab_config.py --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

## browser: headless Chromium for the UI tests (Debian package)
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

## test: set up, then run the whole test suite (real models, real browser)
# Two test processes on two cores: one BLAS/torch thread each, or they oversubscribe the cores.
test: $(STAMP) browser
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile

## models: retrain and export the tiny metatomic test models (metatrain in its own venv, a few minutes)
models: $(STAMP)
	PY=$(PY) tools/train_metatomic_models.sh

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .cache
