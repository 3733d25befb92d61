# mxpolicy — the two commands a newcomer needs (README "Quick start"):
#   make run    install missing Debian packages, build, start mxpolicyd
#   make test   the same set-up, then every unit and integration test
# and: make demo (world + server + `mxpolicy resolve` for each world domain).
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
ARGS ?=

.PHONY: all deps configure build run test tools demo bench fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@MAKEFLAGS= cmake --build $(BUILD_DIR) -j $(JOBS) -- --no-print-directory

run: build
	@echo "mxpolicyd: listening on 127.0.0.1:8460 (Ctrl-C to stop); try: $(BUILD_DIR)/client/mxpolicy resolve example.org"
	@exec $(BUILD_DIR)/server/src/app/mxpolicyd $(ARGS)

# Test tools that are not Debian packages (helm, for tests/helm), fetched
# here so that the tests themselves never leave the machine.
tools:
	@bash scripts/fetch-helm.sh $(BUILD_DIR)/tools

# The world fixture stops itself after the tests; the final stop is a
# backstop for an interrupted run, so nothing is ever left running.
test: build tools
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS); rc=$$?; \
	  bash $(CURDIR)/tests/world/world.sh stop $(CURDIR)/$(BUILD_DIR)/world >/dev/null 2>&1; \
	  exit $$rc

demo: build
	@bash scripts/demo.sh $(BUILD_DIR)

# Fuzzing: every libFuzzer target of tests/fuzz for 10 min each (clang,
# ASan+UBSan, own build dir build-fuzz/); crash inputs land in
# build-fuzz/artifacts/.
fuzz:
	@bash scripts/fuzz.sh 600

# Benchmarks: ratios against a baseline measured in the same run.
bench: build
	@bash scripts/bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR)
