# Short verbs. Every target installs what it needs into .venv by itself.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NODES   ?= 3
THRESHOLD ?= 1

.PHONY: install check test soak mutation cluster bench lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check secretstore tests bench
	$(BIN)/ruff format --check secretstore tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

# The quick loop: lint, types, import rules and the fast tests (under a minute).
check: lint typecheck
	$(BIN)/pytest -q -m "not e2e and not slow and not chain" -p no:cacheprovider

# The whole suite, as CI runs it: the fault suite's quick part included (real nodes in network
# namespaces; it prints its figures at the end), the soak left out.
test: lint typecheck
	@sh scripts/ensure-iptables
	$(BIN)/pytest -q -p no:cacheprovider -m "not soak"

# The long fault run: kills, SIGSTOPs and partitions during $(SOAK_OPERATIONS) operations on
# 5 nodes; prints its figures.
SOAK_OPERATIONS ?= 6000
soak: $(STAMP)
	@sh scripts/ensure-iptables
	SOAK_OPERATIONS=$(SOAK_OPERATIONS) $(BIN)/pytest -q -p no:cacheprovider -m soak tests/faults

# Mutation testing (mutmut) over crypto/, sessions/, the driver and storage: long, not in
# `make test`; the surviving mutants are listed at the end (`mutmut results`).
mutation: $(STAMP)
	sh scripts/mutation

# A local cluster of $(NODES) nodes on embedded defaults (no chain, acl_contract = "none").
cluster: $(STAMP)
	$(BIN)/secretstore cluster --nodes $(NODES) --dir .cluster

# Figures, not tests: every script prints a table (the cluster ones start real node processes).
bench: $(STAMP)
	$(BIN)/python bench/crypto.py
	$(BIN)/python bench/sessions.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/mesh.py
	$(BIN)/python bench/cluster.py
	$(BIN)/python bench/api.py

clean:
	rm -rf $(VENV) .cluster .mypy_cache .ruff_cache .pytest_cache
