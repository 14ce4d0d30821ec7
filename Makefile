# Tachy. `make help` lists the targets.
GO ?= go
BIN := bin/tachy

.PHONY: help deps build test test-unit bpf lab demo fuzz bench clean image vmtest
help:
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

deps: ## install what the tests, lab and demo need (Debian 12, as root; no-op when present)
	bash scripts/deps.sh

build: ## build bin/tachy (static, no cgo)
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/tachy

test: deps build ## every test: unit and BPF tests, the namespace-lab tests, the QEMU lab's smoke scenario (root)
	$(GO) vet ./...
	$(GO) test -race -short -count=1 ./...
	TACHY_BIN=$(abspath $(BIN)) $(GO) test -count=1 -p 1 -timeout 25m ./lab/...
	bash scripts/deps.sh --image
	$(GO) run ./image/cmd/mkimage -tachy $(BIN) -out build/image -cache build/cache  # fetches the kernel: the lab has no network
	TACHY_VMTEST=1 bash scripts/isolated.sh $(GO) test -count=1 -timeout 15m -v -run 'Smoke' ./vmtests/

test-unit: ## unit tests only (no root needed; root-only tests skip)
	$(GO) test -race -short -count=1 ./...

bpf: ## regenerate the eBPF objects and Go loaders (installs clang, llvm, libbpf-dev)
	bash scripts/deps.sh --bpf
	$(GO) generate ./bpf/...

image: build ## appliance kernel + initramfs + UEFI disk image in build/image (IMAGE_CONFIG=DIR adds /etc/tachy, NODE_PARAMS the identity; docs/image.md)
	bash scripts/deps.sh --image
	$(GO) run ./image/cmd/mkimage -tachy $(BIN) -out build/image -cache build/cache -disk $(if $(IMAGE_CONFIG),-config $(IMAGE_CONFIG)) $(if $(NODE_PARAMS),-node-params '$(NODE_PARAMS)')

vmtest: deps build ## the QEMU lab's scenarios (appliance VMs, TCG; root; docs/vmtests.md). VMTEST=regexp picks some
	bash scripts/deps.sh --image
	$(GO) run ./image/cmd/mkimage -tachy $(BIN) -out build/image -cache build/cache  # fetches the kernel: the lab has no network
	TACHY_VMTEST=1 bash scripts/isolated.sh $(GO) test -count=1 -p 1 -timeout 40m -v -run '$(or $(VMTEST),.)' ./vmtests/

lab: deps build ## a 3-node namespace lab, left running (tachy lab down removes it)
	$(BIN) lab up --nodes 3

demo: deps build ## the main job: 3 nodes running resources; a monitor failure recovered, a node killed, fenced and taken over
	bash scripts/demo.sh

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	bash scripts/fuzz.sh $(or $(FUZZTIME),30s)

bench: deps build ## failure-detection benchmark, JSON on stdout
	$(BIN) bench detect --json

clean:
	rm -rf bin
