# runbook: build, test and local environment.
#
#   make build       swift build
#   make unit        unit tests only (no emulator)
#   make check-layers  the layers: Package.swift's arrows and every import (scripts/check-layers.py)
#   make test        all tests; starts moto_server (with the strict layer in front), dockerd, a
#                    registry and the aws CLI loaded once
#                    (scripts/local-aws.sh, scripts/docker-env.sh, scripts/aws-forkserver.sh; set
#                    RUNBOOK_AWS_FORK=0 to start every aws call afresh) and stops them afterwards, by pid
#   make crash-all   the crash tests, interrupting after every write instead of a sample
#                    (RUNBOOK_CRASH_ALL=1; docs/reliability.md)
#   make env-up      start the AWS emulator in .test-env (scripts/local-aws.sh); env-down stops it
#   make demo        run the tool against the emulator (left running); demo-stop stops it
#   make bench       scripts/bench.sh: the guide by hand against the tool, plan, rerun, memory
#                    (TIMING=aws: on AWS's readiness times, scaled; docs/performance-aws.md;
#                    SERVICES=16: the tool with 4 and 16 services, docs/performance-services.md)
#   make format      swift format in place; make lint checks formatting (+ shellcheck if present)
#   make clean       stop local services, remove .build and .test-env (distclean: .venv too)
#
# SWIFT_TEST_FLAGS is passed to swift test, e.g. make test SWIFT_TEST_FLAGS='--filter Network'.
#
# Two aws CLIs: every test runs pip's aws CLI v1, and AWSCLIV2Tests run the tool with the v2 at
# AWS_V2 (default /usr/bin/aws: Debian 12's awscli package, aws-cli/2.9.19, which .ci/run
# installs); without it they fail. docs/reliability.md, "Two aws CLIs".
#
# The strict layer (Tests/Fixtures/aws-strict.py, docs/reliability.md "Strict layer") runs in front
# of every emulator and makes it answer as real AWS does (eventual consistency, resources that take
# time to be ready, names held after a delete, pages). RUNBOOK_AWS_STRICT says whether the tests,
# the demo and env-up talk to it or to moto_server directly: 1 (every behaviour, the default),
# 0 (moto as it is), or a comma list of behaviours. StrictLayerTests, RedeployTests and DayTwoTests
# (the whole runbook, its crash and destroy chains) always use the layer
# (RUNBOOK_TEST_STRICT_ENDPOINTS) whatever this says. RUNBOOK_AWS_STRICT_SCALE scales its delays
# (default 0.01 of AWS's real durations, never zero).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
export RUNBOOK_AWS_STRICT ?= 1
# make test uses its own state dir, so it never stops an emulator started by env-up or demo.
TEST_DIR ?= $(ROOT)/.test-env/make-test
SWIFT_TEST_FLAGS ?=
AWS_V2 ?= /usr/bin/aws
# Test processes at once; each gets its own emulator (as many are started). On 2 cores, 3 workers
# made the suite slower (16.5 min against 14): the whole-runbook test, the longest, got less CPU.
# Since the fork server keeps each call's set-up (2026-12-04): 2 workers 11.5 min, 3 workers
# 10.6 min with every test slower (1706 s of test time against 1319 s): 2 stays, the margin
# kept for a loaded machine.
TEST_WORKERS ?= 2
# The emulators' state dirs: $(TEST_DIR), $(TEST_DIR)-2, ... one per worker.
TEST_EMULATOR_DIRS = $(TEST_DIR) $(foreach n,$(wordlist 2,$(TEST_WORKERS),1 2 3 4 5 6 7 8 9),$(TEST_DIR)-$(n))
# The demo's checkpoint (make demo-stop leaves it; a new demo starts from a fresh emulator and state).
DEMO_STATE ?= .runbook-demo
CONFIG ?= runbooks/local.json
SH_SCRIPTS := scripts/local-aws.sh scripts/docker-env.sh scripts/aws-forkserver.sh scripts/demo-health.sh scripts/guide-by-hand.sh .ci/run \
	Tests/Fixtures/bin/aws Tests/Fixtures/bin/docker Tests/Fixtures/bin-fake/aws Tests/Fixtures/bin-fake/docker

.PHONY: build test check-layers crash-all unit env-up env-down demo demo-stop bench format lint lint-sh clean distclean

build:
	swift build

unit:
	swift test --filter RunbookKitTests

check-layers:
	python3 scripts/check-layers.py

test: check-layers
	swift build --build-tests
	export RUNBOOK_TEST_DIR='$(TEST_DIR)'; \
	trap 'scripts/aws-forkserver.sh stop "$$RUNBOOK_TEST_DIR"; scripts/aws-forkserver.sh stop "$$RUNBOOK_TEST_DIR/aws-v2"; for dir in $(TEST_EMULATOR_DIRS); do RUNBOOK_TEST_DIR="$$dir" scripts/local-aws.sh stop; done; scripts/docker-env.sh stop' EXIT; \
	trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP; \
	endpoints=""; strict_endpoints=""; \
	for dir in $(TEST_EMULATOR_DIRS); do \
	  RUNBOOK_TEST_DIR="$$dir" scripts/local-aws.sh start >/dev/null; \
	  endpoints="$$endpoints $$(RUNBOOK_TEST_DIR="$$dir" scripts/local-aws.sh url)"; \
	  strict_endpoints="$$strict_endpoints $$(RUNBOOK_TEST_DIR="$$dir" scripts/local-aws.sh strict-url)"; \
	done; \
	eval "$$(scripts/local-aws.sh env)"; \
	export RUNBOOK_TEST_ENDPOINTS="$${endpoints# }"; \
	export RUNBOOK_TEST_STRICT_ENDPOINTS="$${strict_endpoints# }"; \
	export RUNBOOK_AWS_FORK_SOCKET="$$(scripts/aws-forkserver.sh start '$(TEST_DIR)')"; \
	echo "aws fork server: $${RUNBOOK_AWS_FORK_SOCKET:-none (every aws call starts afresh)}"; \
	export RUNBOOK_TEST_LOCK_DIR='$(TEST_DIR)'; \
	if scripts/docker-env.sh start >/dev/null; then \
	  eval "$$(scripts/docker-env.sh env)"; \
	  echo "dockerd at $$DOCKER_HOST, registry at $$RUNBOOK_TEST_REGISTRY"; \
	else \
	  echo "make test: dockerd or the registry did not start: the tests that need them will fail" >&2; \
	fi; \
	export PATH='$(ROOT)/Tests/Fixtures/bin':"$$PATH"; \
	export RUNBOOK_TEST_BIN='$(ROOT)/.build/debug/runbook'; \
	export RUNBOOK_AWS_V2='$(AWS_V2)'; \
	v2="$$("$$RUNBOOK_AWS_V2" --version 2>&1 || true)"; \
	case "$$v2" in \
	  aws-cli/2.*) \
	    export RUNBOOK_AWS_V2_FORK_SOCKET="$$(RUNBOOK_REAL_AWS="$$RUNBOOK_AWS_V2" scripts/aws-forkserver.sh start "$$RUNBOOK_TEST_DIR/aws-v2")"; \
	    echo "aws CLI v2 (AWSCLIV2Tests): $$RUNBOOK_AWS_V2, $${v2%% *}, fork server: $${RUNBOOK_AWS_V2_FORK_SOCKET:-none}" ;; \
	  *) echo "make test: no aws CLI v2 at $$RUNBOOK_AWS_V2 (apt-get install awscli, or AWS_V2=PATH): AWSCLIV2Tests will fail" >&2 ;; \
	esac; \
	echo "emulators: $$RUNBOOK_TEST_ENDPOINTS (state: $$RUNBOOK_TEST_DIR); strict layer: $$RUNBOOK_TEST_STRICT_ENDPOINTS (RUNBOOK_AWS_STRICT=$$RUNBOOK_AWS_STRICT)"; \
	status=0; rm -f '$(TEST_DIR)/xunit.xml'; \
	swift test --parallel --num-workers $(TEST_WORKERS) --disable-swift-testing \
	  --xunit-output '$(TEST_DIR)/xunit.xml' $(SWIFT_TEST_FLAGS) || status=$$?; \
	python3 scripts/test-summary.py '$(TEST_DIR)/xunit.xml'; \
	exit $$status

# The tests that interrupt runs: with RUNBOOK_CRASH_ALL=1 every write is a kill point.
CRASH_TESTS ?= DayTwoTests|testKilled
crash-all: export RUNBOOK_CRASH_ALL := 1
crash-all: SWIFT_TEST_FLAGS := --filter '$(CRASH_TESTS)'
crash-all: test

env-up:
	scripts/local-aws.sh start

env-down:
	scripts/local-aws.sh stop

# The demo's registry listens on the port the configuration's "registry" names (local.json: 5000).
DEMO_REGISTRY_PORT ?= $(shell python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("registry","127.0.0.1:5000").rsplit(":",1)[1])' '$(CONFIG)' 2>/dev/null || echo 5000)

# The emulator runs no containers: the demo's verify probes a stand-in for the services' health
# endpoint at the configuration's healthCheckUrl (local.json: http://127.0.0.1:8080/actuator/health).
DEMO_HEALTH_URL ?= $(shell python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("healthCheckUrl",""))' '$(CONFIG)' 2>/dev/null)

demo:
	@trap 'echo "stop it with: make demo-stop"' EXIT; \
	scripts/local-aws.sh start >/dev/null; \
	RUNBOOK_REGISTRY_PORT='$(DEMO_REGISTRY_PORT)' scripts/docker-env.sh start >/dev/null; \
	swift build; \
	scripts/demo-health.sh start '$(DEMO_HEALTH_URL)'; \
	eval "$$(scripts/local-aws.sh env)"; \
	eval "$$(scripts/docker-env.sh env)"; \
	export PATH='$(ROOT)/Tests/Fixtures/bin':"$$PATH"; \
	export UNISYNC_CANVAS_API_TOKEN="$${UNISYNC_CANVAS_API_TOKEN:-demo-canvas-token}"; \
	export UNISYNC_COGNITO_USER_POOL_ID="$${UNISYNC_COGNITO_USER_POOL_ID:-ap-northeast-2_demo}"; \
	export UNISYNC_COGNITO_CLIENT_ID="$${UNISYNC_COGNITO_CLIENT_ID:-demo-client}"; \
	url="$$RUNBOOK_TEST_ENDPOINT"; \
	for cmd in '--yes run' '--yes run verify' status; do \
	  echo "+ .build/debug/runbook --config $(CONFIG) --state-dir $(DEMO_STATE) --endpoint-url $$url $$cmd"; \
	  .build/debug/runbook --config '$(CONFIG)' --state-dir '$(DEMO_STATE)' --endpoint-url "$$url" $$cmd; \
	done

demo-stop:
	scripts/demo-health.sh stop
	scripts/local-aws.sh stop
	scripts/docker-env.sh stop
	rm -rf '$(DEMO_STATE)'

bench:
	@if [[ -x scripts/bench.sh ]]; then scripts/bench.sh $(if $(TIMING),--timing $(TIMING)) $(if $(SERVICES),--services $(SERVICES)); \
	else echo "scripts/bench.sh is not there yet"; fi

format:
	swift format --in-place --recursive Sources Tests

lint: lint-sh
	swift format lint --recursive Sources Tests

lint-sh:
	@if command -v shellcheck >/dev/null; then shellcheck $(SH_SCRIPTS); \
	else echo "shellcheck not installed (apt-get install shellcheck): skipped"; fi

clean:
	for dir in '$(ROOT)/.test-env' '$(TEST_DIR)'; do \
	  RUNBOOK_TEST_DIR="$$dir" scripts/local-aws.sh stop; \
	  RUNBOOK_TEST_DIR="$$dir" scripts/docker-env.sh stop; \
	done
	rm -rf .build .test-env

distclean: clean
	rm -rf .venv
