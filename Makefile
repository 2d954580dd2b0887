# Reco: the two set-up commands (see README.md).
#   make demo   install, migrate, load a demo world and serve on 127.0.0.1:8000 (embedded defaults)
#   make test   install and run every test against PostgreSQL and Redis on 127.0.0.1 (and Chromium for tests/browser)
#   make lint   ruff check (unused noqa included), ruff format --check, the import contracts of .importlinter;
#               make typecheck: mypy
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1:8000
TEST_DATABASE_URL ?= postgres://reco:reco@127.0.0.1:5432/reco
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_BROKER_URL ?= redis://127.0.0.1:6379/13

.PHONY: install browser demo test smoke bench-load lint typecheck

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

browser:
	bash .ci/browser.sh

demo: install  # development settings on purpose: plain HTTP, an insecure key, DEBUG still off
	DJANGO_SETTINGS_MODULE=config.settings.dev $(BIN)/python manage.py migrate --verbosity 0
	DJANGO_SETTINGS_MODULE=config.settings.dev $(BIN)/python manage.py demo_setup --host $(HOST)
	DJANGO_SETTINGS_MODULE=config.settings.dev $(BIN)/python manage.py runserver $(HOST)

test: install browser
	$(BIN)/ruff check .
	bash .ci/services.sh
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
	CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	CELERY_RESULT_BACKEND=$${CELERY_RESULT_BACKEND:-$(TEST_BROKER_URL)} \
		$(BIN)/pytest

smoke: install
	bash .ci/smoke.sh

bench-load: install
	bash .ci/services.sh
	$(BIN)/python bench/load_data.py synthetic --json bench/results/load_synthetic.json

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install  # strict on the pure packages (pyproject [tool.mypy]); the rest follows as it is typed
	$(BIN)/mypy recommendations/ml users/ml ranking/ml
	$(BIN)/mypy --strict --follow-imports=silent config/reloading.py  # the caches' reload helper, pure too
