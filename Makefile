# The two commands a newcomer needs: `make run` (a working kit) and `make test`.
# Both install the Debian packages and the virtual environment at .venv/ first.

VENV := .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml kitformats/pyproject.toml kitsync/pyproject.toml scripts/install-system-packages
	sh scripts/install-system-packages
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "kitd needs Python 3.11 or newer"'
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ./kitformats -e ./kitsync -e '.[test]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/kit-sim --port 8080

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/python -m pytest -q -ra -n 2 --dist loadfile --durations=25
	$(VENV)/bin/python -m bench --smoke

bench: setup
	$(VENV)/bin/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache artifacts
