# The two commands a fresh machine needs:
#   make demo   set up, poll the sample inbox into SQLite, show what was stored
#   make test   set up (Python and Debian packages) and run the whole test suite
# And for a server (see the README's "Installing on a server"), as root:
#   make install   a virtualenv with the runtime dependencies only in $(PREFIX),
#                  the config and secrets files (kept if present), the systemd units
VENV ?= .venv
PREFIX ?= /opt/consultation-intake
SYSCONFDIR ?= /etc/consultation-intake
UNITDIR ?= /etc/systemd/system
PYTHON ?= python3
PY := $(VENV)/bin/python
INTAKE := $(VENV)/bin/intake
DEMO := $(INTAKE) --config examples/demo.toml

.PHONY: setup system-deps test demo lint bench clean install

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,dev]'
	touch $@

# The program's own bytecode, as an install writes it: where PYTHONDONTWRITEBYTECODE
# is set, every `intake` process (the tests start many) would otherwise compile it again.
setup: $(VENV)/.installed
	$(PY) benchmarks/installed.py

system-deps:
	sh scripts/system-deps.sh

test: system-deps setup
	$(PY) -m pytest

demo: setup
	rm -f examples/demo.db examples/demo.db-wal examples/demo.db-shm
	$(DEMO) poll
	$(DEMO) list
	$(DEMO) show KIL-00001

lint: setup
	$(VENV)/bin/ruff check intake parsers store tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) examples/demo.db* .pytest_cache

# Runtime dependencies only (no test or lint tools); an existing config.toml and env
# are never overwritten, so `make install` is also the upgrade step.
install:
	$(PYTHON) -m venv $(PREFIX)
	$(PREFIX)/bin/python -m pip install -q --upgrade .
	install -d -m 0755 $(SYSCONFDIR) $(UNITDIR)
	test -e $(SYSCONFDIR)/config.toml || install -m 0640 config.example.toml $(SYSCONFDIR)/config.toml
	test -e $(SYSCONFDIR)/env || install -m 0600 examples/env.example $(SYSCONFDIR)/env
	for unit in examples/systemd/*.service examples/systemd/*.timer; do \
	  sed -e 's|/opt/consultation-intake|$(PREFIX)|g' -e 's|/etc/consultation-intake|$(SYSCONFDIR)|g' \
	    "$$unit" > $(UNITDIR)/$$(basename "$$unit"); \
	done
	@echo "Installed $(PREFIX)/bin/intake; next: edit $(SYSCONFDIR)/config.toml and $(SYSCONFDIR)/env"
