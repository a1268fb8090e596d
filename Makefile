# Two commands: `make run` (everything, locally) and `make test` (the whole suite).
# Both create the virtual environment and install the project on first use.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Reinstall when the dependencies change.
INSTALLED := $(VENV)/.installed

.PHONY: setup run test lint lock assets check-assets code-css screenshots clean-data

setup: $(INSTALLED)
	@scripts/ensure-bubblewrap.sh
	@scripts/ensure-chromium.sh
	@scripts/ensure-uml.sh
	@scripts/ensure-promtool.sh
	@scripts/ensure-caddy.sh

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "SafeExam needs Python 3.11 or newer (try: make PYTHON=python3.11 ...)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,local]'
	@touch $@

run: setup
	$(BIN)/safexam dev

# Two pytest processes, one per core: most tests wait on a browser, a server or a
# sandbox, so two overlap well. Each process has its own database and Redis
# namespace (tests/conftest.py); a test file stays in one process, with its fixtures.
TEST_PROCESSES ?= 2
test: setup
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

# requirements.lock: every package the production images install (pyproject.toml's
# dependencies, not the dev or local extras), pinned with their hashes.
lock: setup
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile -q --generate-hashes \
		--strip-extras --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

# Every tool runs, so one report shows every problem; fails if any found one.
# lint-imports checks the layers declared in pyproject.toml ([tool.importlinter]).
lint: setup
	@status=0; \
	$(BIN)/ruff check src workers tests bench || status=1; \
	$(BIN)/mypy src workers || status=1; \
	$(BIN)/lint-imports --no-cache --no-logo || status=1; \
	exit $$status

# The front-end files kept in the repository, refreshed from the npm registry
# (versions pinned in package.json and package-lock.json): htmx for the pages,
# axe-core for the browser tests, and the code editor (CodeMirror 6, bundled by
# esbuild from assets/editor/editor.js). A clone needs no npm; only this target does.
assets:
	npm ci --no-audit --no-fund
	cp node_modules/htmx.org/dist/htmx.min.js src/safexam/web/static/vendor/htmx.min.js
	cp node_modules/axe-core/axe.min.js tests/web/vendor/axe.min.js
	scripts/build-editor.sh

# Fails when the committed editor bundle is not what `make assets` builds (CI runs it).
check-assets:
	@scripts/check-editor-bundle.sh

# The colours of highlighted code in prompts (static/css/code.css), from the
# Pygments style named in web/markdown.py.
code-css: setup
	$(BIN)/python scripts/code-css.py

# The README's pictures of the exam page, the coding workspace and an exam's results, taken by the
# browser tests themselves (as the database and Redis of `make test` allow).
SHOTS := $(shell mktemp -d -u)
screenshots: setup
	SAFEXAM_SCREENSHOTS=$(SHOTS) $(BIN)/pytest -q \
		tests/web/test_exam_page.py::test_a_mixed_exam_from_sign_in_to_submit \
		tests/web/test_coding_workspace.py \
		tests/web/test_results_pages.py \
		tests/web/test_monitor_page.py \
		tests/web/test_installable_app.py::test_a_visitor_finds_the_app_installable_and_asks_to_talk
	mkdir -p docs/screenshots
	cp $(SHOTS)/web-exam-answered.png docs/screenshots/exam-page.png
	cp $(SHOTS)/web-coding-workspace-results.png docs/screenshots/coding-workspace.png
	cp $(SHOTS)/web-results.png docs/screenshots/results.png
	cp $(SHOTS)/web-monitor.png docs/screenshots/monitor.png
	cp $(SHOTS)/web-landing.png docs/screenshots/landing.png
	rm -rf $(SHOTS)

# Removes the embedded PostgreSQL and Redis data of `make run` (asks first).
clean-data:
	@read -p "Delete .safexam/ (all local exams, users and answers)? [y/N] " answer; \
		[ "$$answer" = y ] && rm -rf .safexam && echo "deleted .safexam/" || echo "kept"
