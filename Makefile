# pgfeed: PGXS build of the extension, plus the project's test, bench and demo entry points.
PG_CONFIG ?= pg_config

MODULE_big = pgfeed
MODULEDIR = extension
DATA = extension/pgfeed.control $(wildcard extension/pgfeed--*.sql)
CXX_SOURCES = $(wildcard extension/*.cpp extension/core/*.cpp)
OBJS = $(CXX_SOURCES:.cpp=.o)
SHLIB_LINK = -lstdc++

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --outputdir=build/regress

PG_CPPFLAGS = -isystem $(shell $(PG_CONFIG) --includedir-server)
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -Wno-missing-field-initializers -Wno-register -fno-omit-frame-pointer
# No JIT bitcode: nothing here is worth inlining into JIT-compiled expressions.
override with_llvm = no

# Rebuild what includes a changed header (PGXS tracks no header dependencies otherwise).
override autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: test deps demo bench format notifier notifier-test
deps:
	test/install-deps.sh

# Every suite: unit tests of the extension's pure C++ core, of the notifier and of the browser
# client (clients/js, node's test runner), then pg_regress
# and the concurrency tests against a throwaway PostgreSQL, then the notifier's fault tests with
# real redis-server and notifier processes, then the demo page in headless Chromium.
test: deps
	$(MAKE) all
	$(MAKE) install
	$(MAKE) notifier
	test/unit/run.sh
	ctest --test-dir build/notifier --output-on-failure
	test/run-client-tests.sh
	FUZZ_SECONDS=$${FUZZ_SECONDS:-15} notifier/test/fuzz.sh
	test/run-sql-tests.sh
	test/run-notifier-tests.sh
	test/run-e2e-tests.sh

demo: deps
	$(MAKE) all
	$(MAKE) install
	$(MAKE) notifier
	demo/run.sh

bench: deps
	$(MAKE) all
	$(MAKE) install
	$(MAKE) notifier
	bench/feed/run.sh
	bench/feed/writes.sh
	bench/notifier/run.sh
	bench/sse/run.sh

# The daemon (notifier/) is a CMake build of its own; the binary is build/notifier/pgfeed-notifier.
notifier:
	cmake -S notifier -B build/notifier -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build build/notifier -j2

notifier-test: notifier
	ctest --test-dir build/notifier --output-on-failure

format:
	clang-format -i extension/*.cpp extension/*.hpp extension/core/*.cpp extension/core/*.hpp test/unit/*.cpp \
		notifier/*.cpp notifier/*.hpp notifier/test/*.cpp notifier/test/*.hpp
