#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine:
# protoc (Debian's protobuf-compiler), the Go protobuf plugins at pinned
# versions, and Debian's chromium for the web UI tests (tests/ui; skipped
# when a chromium is already on the PATH, or with WITHOUT_CHROMIUM=1).
set -euo pipefail
gobin="$(go env GOPATH)/bin"
need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
if [ "${WITHOUT_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then need+=(chromium); fi
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
want_go=$(sed -n 's/^PROTOC_GEN_GO_VERSION := //p' Makefile)
want_grpc=$(sed -n 's/^PROTOC_GEN_GO_GRPC_VERSION := //p' Makefile)
if ! "$gobin/protoc-gen-go" --version 2>/dev/null | grep -q "${want_go}"; then
  GOBIN="$gobin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${want_go}"
fi
if ! "$gobin/protoc-gen-go-grpc" --version 2>/dev/null | grep -q "${want_grpc#v}"; then
  GOBIN="$gobin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${want_grpc}"
fi
