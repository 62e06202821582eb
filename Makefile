SHELL := /bin/bash
GO ?= go
GOBIN := $(shell $(GO) env GOPATH)/bin
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
PROTOS := $(wildcard proto/*/v1/*.proto)

.PHONY: all build run test test-deploy test-robustness bench proto proto-check tools fmt clean image

all: build

## build: bin/weir, one static binary
build:
	CGO_ENABLED=0 $(GO) build -o bin/weir ./cmd/weir

## run: build, start weir dev with the example job, print the web UI address
run: build
	./bin/weir dev --example

## test: the whole test suite, race detector on
test: tools proto-check build
	$(GO) vet ./...
	$(GO) test -race -timeout 15m ./...
	$(MAKE) test-deploy

## test-deploy: the deployment files (deploy/: Helm chart, systemd units,
## Grafana dashboard) rendered and checked, in their own Go module
test-deploy: build
	cd deploy && $(GO) vet ./... && WEIR_E2E_BIN=$(CURDIR)/bin/weir $(GO) test -race -timeout 10m ./...

## test-robustness: the long fault suite, SEEDS runs (default 5) of FAULTS
## faults of every kind (default 20); SEED=n starts at (and replays) seed n.
## make test runs one short seed of it.
test-robustness: tools build
	$(GO) test -timeout 85m -v -run TestRobustness ./tests/robustness -args \
		-seeds $(or $(SEEDS),5) -faults $(or $(FAULTS),20) $(if $(SEED),-seed $(SEED))

## bench: benchmarks with ratios against baselines measured in the same run
bench: build
	$(GO) run ./tests/bench

## tools: Debian packages and Go code generators the build needs
tools:
	@bash scripts/install-tools.sh

## proto: regenerate the committed protobuf code
proto: tools
	PATH="$(GOBIN):$$PATH" protoc --proto_path=. --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative $(PROTOS)

## proto-check: fail when the committed generated code is not what `make proto` makes
proto-check: tools
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	PATH="$(GOBIN):$$PATH" protoc --proto_path=. --go_out=$$tmp --go_opt=paths=source_relative \
		--go-grpc_out=$$tmp --go-grpc_opt=paths=source_relative $(PROTOS) && \
	for f in $$(cd $$tmp && find . -name '*.go'); do \
		cmp -s $$tmp/$$f $$f || { echo "generated code $$f is stale: run make proto"; exit 1; }; \
	done && echo "protobuf code is current"

## image: the container image from deploy/image/Dockerfile, tagged IMAGE
## (default weir:dev); needs docker
IMAGE ?= weir:dev
image:
	@command -v docker >/dev/null || { echo "make image needs docker (not found in PATH)"; exit 1; }
	docker build -f deploy/image/Dockerfile -t $(IMAGE) .

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf bin
