# The two commands: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
DEMO_PROFILES ?= 3000
DEMO_EVENTS_PER_PROFILE ?= 30
PORT ?= 8000

.PHONY: install run test messages bench clean

$(INSTALLED): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(INSTALLED)

install: $(INSTALLED)

# Web app on http://127.0.0.1:$(PORT)/admin/ (8000 unless PORT=…) plus a Celery worker with beat on the
# configured broker (filesystem under var/ by default), consuming every queue (cdp/queues.py);
# Ctrl-C stops both.
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py generate_demo --profiles $(DEMO_PROFILES) --events-per-profile $(DEMO_EVENTS_PER_PROFILE) --seed 1 --if-empty
	$(PY) manage.py ensure_admin
	@$(VENV)/bin/celery -A cdp worker --beat --loglevel=info --concurrency=2 -Q default,imports,segments,deliveries & celery=$$!; \
	trap 'kill $$celery 2>/dev/null; wait $$celery 2>/dev/null' EXIT INT TERM; \
	$(PY) manage.py runserver 127.0.0.1:$(PORT)

# The whole suite; SQLite unless DATABASE_URL says otherwise. Extra pytest flags: ARGS=…
test: install
	$(VENV)/bin/pytest tests $(ARGS)

# Refresh the zh_Hans catalogue after adding strings, then translate and compile it.
messages: install
	$(PY) manage.py makemessages --locale zh_Hans --no-obsolete --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*' --ignore 'bench/*'
	$(PY) manage.py compilemessages --locale zh_Hans --ignore '.venv/*'

# Benchmarks (never part of `make test`); see README for sizes and the PostgreSQL URL.
bench: install
	$(PY) bench/run.py $(ARGS)

clean:
	rm -rf var
