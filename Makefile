# The two commands a fresh machine needs:
#   make demo   set up, poll the sample inbox into SQLite, show what was stored
#   make test   set up (Python and Debian packages) and run the whole test suite
VENV ?= .venv
PY := $(VENV)/bin/python
INTAKE := $(VENV)/bin/intake
DEMO := $(INTAKE) --config examples/demo.toml

.PHONY: setup system-deps test demo lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $@

setup: $(VENV)/.installed

system-deps:
	sh scripts/system-deps.sh

test: system-deps setup
	$(PY) -m pytest

demo: setup
	rm -f demo.db demo.db-wal demo.db-shm
	$(DEMO) poll
	$(DEMO) list
	$(DEMO) show KIL-00001

lint: setup
	$(VENV)/bin/ruff check intake parsers store tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) demo.db* .pytest_cache
