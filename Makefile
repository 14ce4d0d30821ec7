# Tachy. `make help` lists the targets.
GO ?= go
BIN := bin/tachy

.PHONY: help build test test-unit test-root bpf lab demo fuzz bench clean
help:
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

build: ## build bin/tachy (static, no cgo)
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/tachy

test: build ## every test: unit tests, then the root-only namespace and XDP tests
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...
	TACHY_BIN=$(abspath $(BIN)) $(GO) test -count=1 -p 1 -tags labtest ./lab/... ./bench/...

test-unit: ## unit tests only (no root needed)
	$(GO) test -race -count=1 ./...

bpf: ## regenerate the eBPF objects and Go loaders (needs clang, llvm, libbpf-dev)
	$(GO) generate ./bpf/...

lab: build ## a 3-node namespace lab, left running (tachy lab down removes it)
	$(BIN) lab up --nodes 3

demo: build ## the main job: 3 nodes, status, a node killed, its detection shown
	bash scripts/demo.sh

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	bash scripts/fuzz.sh $(or $(FUZZTIME),30s)

bench: build ## failure-detection benchmark, JSON on stdout
	$(BIN) bench detect --json

clean:
	rm -rf bin
