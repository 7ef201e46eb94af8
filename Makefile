# Two commands on a fresh machine with only python3:
#   make demo   - simulator -> instrumented openai SDK -> ledger -> dashboard
#   make test   - the whole test suite
# Both bootstrap .venv from uv.lock (uv itself is pip-installed into .tools/ first).

PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
STAMP := $(VENV)/.synced-$(UV_VERSION)-bytecode

.PHONY: demo test lint format bench clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

# --compile-bytecode: where PYTHONDONTWRITEBYTECODE is set (it is on the dev machines) every process would
# otherwise compile each module it imports from source: ~0.5 s per `imagecost` command, ~1 s more for the
# first ingest batch (pyarrow imports pandas).
$(STAMP): uv.lock pyproject.toml | $(UV)
	UV_PYTHON=$(PYTHON) $(UV) sync --locked --quiet --compile-bytecode
	touch $@

demo: $(STAMP)
	$(VENV)/bin/imagecost demo $(ARGS)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .tools $(VENV) .imagecost imagecost.duckdb
