# The two commands of the README:
#   make demo   install what is missing, build, and run the local demo
#   make test   install what is missing, build, and run every test (what CI runs)
# Needs root or sudo for the package install (only when something is missing).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=
# Unity builds (CMake batches of 8 files compiled as one) for the trees make builds: measured
# on a fresh clone, the sanitizer tree took 718 CPU-seconds file by file and about 500
# batched, the normal tree 444 batched; make test builds both on a clean machine.
# UNITY=OFF builds file by file (faster when one file changes).
UNITY      ?= ON

.PHONY: all deps build build-asan test unit-test asan-test demo bench conformance fuzz format tidy clean

all: build

deps:
	@scripts/install-deps.sh

# Debug information is line tables only (-g1): enough for every backtrace and sanitizer
# report, and measured on one unity batch 30 % less compile time than -g (13 % with ASan).
CONFIGURE = cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_UNITY_BUILD=$(UNITY) \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" $(CMAKE_ARGS)
build: deps
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS)

# Unit tests only, with AddressSanitizer and UndefinedBehaviorSanitizer.
build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DINTERMISSION_SANITIZE=ON \
	  -DINTERMISSION_UNIT_ONLY=ON -DCMAKE_UNITY_BUILD=$(UNITY) -DCMAKE_CXX_FLAGS_DEBUG=-g1 \
	  $(CMAKE_ARGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

# Test tools from the npm registry (the DynamoDB emulator), pinned by the lockfile.
tests/tools/node_modules/.installed: tests/tools/package-lock.json
	npm ci --prefix tests/tools --no-audit --no-fund --loglevel=error
	touch $@

# The ledger's reference model against the controller on seeds not tried before (a failing
# seed is printed; replay it with INTERMISSION_MODEL_SEED), then the page server's
# request -> response path under libFuzzer (clang), for a bounded time. New inputs go to a
# scratch folder; the seeds in fuzz/corpus/page stay as committed.
FUZZ_SECONDS ?= 20
MODEL_CASES ?= 30000
fuzz: deps
	$(CONFIGURE)
	cmake --build $(BUILD) -j $(JOBS) --target intermission_core_unit_tests
	INTERMISSION_MODEL_CASES=$(MODEL_CASES) INTERMISSION_MODEL_FIRST_SEED=$$(date +%s) \
	  ./$(BUILD)/src/core/intermission_core_unit_tests --gtest_filter='LedgerModel.*'
	CXX=clang++-14 cmake -S fuzz -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build-fuzz -j $(JOBS)
	scratch=$$(mktemp -d) && ./build-fuzz/page_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=5 \
	  -rss_limit_mb=2048 $$scratch fuzz/corpus/page && rm -rf $$scratch

# The integration tests mostly wait (health checks, sleeps, other processes): twice as many at
# once as there are cores keeps the run short without starving them.
TEST_JOBS ?= $(shell echo $$(( $(JOBS) * 2 )))
# The ledger model's cases under the sanitizers: the normal tree runs 2000 and make fuzz
# 10000 on new seeds; unoptimised and instrumented, 2000 took 139 s of a 144 s run.
ASAN_MODEL_CASES ?= 300
test: build build-asan tests/tools/node_modules/.installed
	ctest --test-dir $(BUILD) --output-on-failure -j $(TEST_JOBS) --timeout 600
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  INTERMISSION_MODEL_CASES=$(ASAN_MODEL_CASES) \
	  ctest --test-dir $(ASAN_BUILD) --output-on-failure -j $(JOBS) -L unit --timeout 600
	$(MAKE) fuzz MODEL_CASES=10000

DEMO_PORT ?= 8080
# Benchmarks (not part of make test): nginx-light and wrk come from Debian.
bench: build
	@command -v wrk >/dev/null && command -v nginx >/dev/null || \
	  (sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; $$sudo apt-get install -y --no-install-recommends nginx-light wrk)
	/usr/bin/python3 bench/page_bench.py --bin $(BUILD)/src/app/intermission --floor-defer
	# The same with pages in 5 languages and a browser's Accept-Language, beside the same binary with
	# one page ("one-page") in the same run: languages must cost nothing the ratios can see.
	/usr/bin/python3 bench/page_bench.py --bin $(BUILD)/src/app/intermission --languages --seconds 3 --repetitions 2 \
	  --idle 2000 --no-scaling
	/usr/bin/python3 bench/lambda_coldstart.py --zip $(BUILD)/intermission-lambda.zip
	/usr/bin/python3 bench/nginx_switch_bench.py --bin $(BUILD)/src/app/intermission
	$(MAKE) conformance

# The page server beside nginx and HAProxy on the same raw requests (a few seconds; not part
# of make test): rewrites docs/conformance.md.
conformance: build
	@command -v nginx >/dev/null && command -v haproxy >/dev/null || \
	  (sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; $$sudo apt-get install -y --no-install-recommends nginx-light haproxy)
	/usr/bin/python3 bench/conformance.py --bin $(BUILD)/src/app/intermission --out docs/conformance.md

demo: build
	/usr/bin/python3 scripts/demo.py --bin $(BUILD)/src/app/intermission --port $(DEMO_PORT)

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

tidy: build
	git ls-files 'src/*.cpp' | xargs clang-tidy -p $(BUILD) --quiet

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
