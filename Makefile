# Short verbs. Every target installs what it needs into .venv by itself.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
NODES   ?= 3

.PHONY: install devtools contracts check test byzantine soak mutation cluster chain-cluster bench bench-quick lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The dev chain (anvil) and the Solidity compiler (solc's JS API), from npm into node_modules.
NPM_STAMP := node_modules/.installed
$(NPM_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm (Node.js) is needed for the chain tests"; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $(NPM_STAMP)

devtools: $(NPM_STAMP)

# Recompile contracts/src into contracts/build (the compiled ABIs and bytecode are committed).
contracts: $(NPM_STAMP)
	node contracts/build.js

lint: $(STAMP)
	$(BIN)/ruff check secretstore tests bench
	$(BIN)/ruff format --check secretstore tests bench
	bash -n scripts/*

typecheck: $(STAMP)
	$(BIN)/mypy

# The quick loop: lint, types, import rules and the fast tests (under a minute).
check: lint typecheck
	$(BIN)/pytest -q -m "not e2e and not slow and not chain and not docker and not browser and not sweep" -p no:cacheprovider

# The whole suite, as CI runs it: the fault suite's quick part and the Byzantine suite's quick
# tier included (the fault suite prints its figures at the end); the soak and the sweep left out.
test: lint typecheck $(NPM_STAMP)
	@sh scripts/ensure-fault-tools
	$(BIN)/pytest -q -p no:cacheprovider -m "not soak and not sweep"

# The long fault run: kills, SIGSTOPs and partitions during $(SOAK_OPERATIONS) operations on
# 5 nodes; prints its figures.
SOAK_OPERATIONS ?= 20000
soak: $(STAMP)
	@sh scripts/ensure-fault-tools
	SOAK_OPERATIONS=$(SOAK_OPERATIONS) $(BIN)/pytest -q -p no:cacheprovider -m soak tests/faults

# Mutation testing (mutmut) over crypto/, sessions/, the driver and storage: long, not in
# `make test`; the surviving mutants are listed at the end (`mutmut results`).
# MUTANTS="secretstore.cluster.driver.*" (re)runs only the mutants those patterns name.
MUTANTS ?=
mutation: $(STAMP)
	sh scripts/mutation $(MUTANTS)

# The Byzantine suite's whole sweep (tests/sim/byzantine, tens of thousands of cases: long).
byzantine: $(STAMP)
	$(BIN)/pytest -q -m sweep -p no:cacheprovider tests/sim/byzantine

# A local cluster of $(NODES) nodes on embedded defaults (no chain, acl_contract = "none").
cluster: $(STAMP)
	$(BIN)/secretstore cluster --nodes $(NODES) --dir .cluster

# The same on a local dev chain: anvil, the Registry, ACL and key server set contracts deployed,
# every node configured with "registry" (the deployed addresses are printed).
chain-cluster: $(STAMP) $(NPM_STAMP)
	$(BIN)/secretstore chain-cluster --nodes $(NODES) --dir .chain-cluster

# Figures, not tests: every script prints a table (the cluster ones start real node processes).
# docs/PERFORMANCE.md says what each figure is; `bench` is the full run it quotes (tens of
# minutes: a million keys per node, the scaling curve to 256 nodes and its plot), `bench-quick`
# the same scripts with small counts (a few minutes), to see that they run and roughly where.
BENCH_STAMP := $(VENV)/.installed-bench
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) $(NPM_STAMP)
	$(BIN)/python bench/crypto.py
	$(BIN)/python bench/sessions.py
	$(BIN)/python bench/storage.py
	$(BIN)/python bench/mesh.py
	$(BIN)/python bench/cluster.py
	$(BIN)/python bench/api.py
	$(BIN)/python bench/critical_path.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/node_set_change.py
	$(BIN)/python bench/chain.py
	$(BIN)/python bench/services.py
	$(BIN)/python bench/million.py
	$(BIN)/python bench/scaling.py --real 4 8 16 --table --plot docs/scaling.png

bench-quick: $(BENCH_STAMP) $(NPM_STAMP)
	$(BIN)/python bench/crypto.py --seconds 0.1
	$(BIN)/python bench/sessions.py --signs 5 --rounds 2
	$(BIN)/python bench/storage.py --keys 10000
	$(BIN)/python bench/mesh.py --rounds 500
	$(BIN)/python bench/cluster.py --rounds 1 --requests 50 --keys 5
	$(BIN)/python bench/api.py --requests 200 --seconds 1 --gen5 10 --gen16 3 --gen32 0 --signs 30
	$(BIN)/python bench/critical_path.py --requests 100
	$(BIN)/python bench/audit.py --requests 20 --entries 100
	$(BIN)/python bench/node_set_change.py --keys 20 --samples 10
	$(BIN)/python bench/chain.py --requests 20
	$(BIN)/python bench/million.py --keys 20000 --small 1000 --requests 200 --documents 4
	$(BIN)/python bench/scaling.py --sizes 8 16 32 --real 4 --generations 3 --retrievals 50

clean:
	rm -rf $(VENV) .cluster .chain-cluster node_modules .mypy_cache .ruff_cache .pytest_cache
