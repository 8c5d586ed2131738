# baowrap — build, test and demo entry points. Every target installs what it
# needs on a fresh Debian bookworm machine (see scripts/install-deps.sh).
SHELL := /bin/bash
.DEFAULT_GOAL := all

DEPS        := $(CURDIR)/.deps
CURL_PREFIX := $(DEPS)/curl-static
DIST        := $(CURDIR)/dist
REVISION    := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

export CURL_STATIC_PREFIX := $(CURL_PREFIX)
export BW_BUILD_REVISION  := $(REVISION)

.PHONY: all build deps baowrap baowrapctl image size test unit integration e2e ha demo bench clean

all: build
build: baowrap baowrapctl

deps:
	@scripts/install-deps.sh build

$(CURL_PREFIX)/lib/libcurl.a: scripts/build-curl.sh | deps
	@scripts/build-curl.sh $(CURL_PREFIX)

# The in-pod binary: fully static, stripped copy in dist/. -Osize and
# identical-code folding take about 220 KB off (measured; see docs/architecture.md).
STATIC_FLAGS := -Xswiftc -static-executable -Xswiftc -Osize -Xlinker --icf=all
baowrap: $(CURL_PREFIX)/lib/libcurl.a
	swift build -c release --product baowrap $(STATIC_FLAGS)
	@mkdir -p $(DIST)
	@strip -o $(DIST)/baowrap .build/release/baowrap
	@echo "dist/baowrap: $$(stat -c %s $(DIST)/baowrap) bytes stripped"

# The workstation tool: Foundation and Yams, linked dynamically, built in
# its own scratch folder so it never forces a rebuild of the static binary.
baowrapctl: $(CURL_PREFIX)/lib/libcurl.a
	swift build -c release --product baowrapctl --scratch-path .build-ctl
	@mkdir -p $(DIST)
	@cp .build-ctl/release/baowrapctl $(DIST)/baowrapctl

# The init image as a reproducible OCI image-layout archive, built with umoci
# (no container daemon); init-image/Dockerfile is the same image for docker.
image: baowrap
	@scripts/install-deps.sh image
	@init-image/build.sh $(DIST)/baowrap $(DIST)/baowrap-init.oci.tar

size: baowrap
	@scripts/size-report.sh $(DIST)/baowrap .build/release/baowrap

unit: $(CURL_PREFIX)/lib/libcurl.a
	swift test

integration: baowrap baowrapctl
	@Tests/run-integration.sh

# A pod's life around baowrap without a cluster (root: namespaces, mounts):
# the init image installs the binary, app containers run it as PID 1.
e2e: image
	@Tests/e2e/run.sh

# The HA lane: 3 Raft nodes behind haproxy and nginx stream, failover and
# sealed-node tests, 200 starts per fault (Tests/harness/ha, Tests/ha).
ha: baowrap
	@Tests/run-ha.sh

test: unit integration e2e ha

demo: baowrap
	@scripts/demo.sh

# Time to exec against OpenBao Agent, a bao CLI script and the physical
# limit; rewrites the results in docs/benchmarks.md and docs/benchmarks.svg.
# BENCH_ARGS passes options to bench/run.py (e.g. --wait-load 1.5).
bench: baowrap
	@scripts/install-deps.sh harness bench
	@Tests/harness/setup.sh
	@bench/run.sh $(BENCH_ARGS)

clean:
	rm -rf .build .build-ctl .build-bench $(DIST)
