# Scholion: `make demo` to try it, `make test` to run the whole suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test serve lint format install install-dev bench clean

# Runs a web server with the background worker beside it (imports run there), and stops the
# worker when the server stops, however it stops (Ctrl+C, an error, a signal to make). The
# worker finishes the task it is running first; a second Ctrl+C stops it at once, and an
# import stopped that way says so on its page and can be tried again.
with_worker = $(PY) manage.py db_worker --no-reload & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker' EXIT; trap 'exit 130' INT TERM HUP; \
	$(1)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py load_demo
	@echo ""
	@echo "Scholion is running on http://$(HOST):$(PORT)/  (log in with the demo login above)"
	@echo ""
	export DEBUG=1; $(call with_worker,$(PY) manage.py runserver $(HOST):$(PORT))

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# A real deployment: DEBUG off, gunicorn. Needs SECRET_KEY and ALLOWED_HOSTS (see README).
serve: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput
	$(call with_worker,$(VENV)/bin/gunicorn -c config/gunicorn.py config.wsgi --bind $(HOST):$(PORT))

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install-dev
	DEBUG=1 $(PY) bench/ingest.py
	DEBUG=1 $(PY) bench/reader.py

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
