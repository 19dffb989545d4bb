# mcpgate: one plain GNU Makefile. Out-of-tree objects in $(BUILD).
#   make            build the gateway and the example server
#   make check      install test dependencies, build with -Werror, run unit + e2e tests
#   make demo       install dependencies, build, start the gateway in front of examples/mcp-sqlite
#   make SANITIZE=1 ...   the same under ASan+UBSan (objects in build-asan/)
#   make fuzz       build libFuzzer targets with clang
#   make bench-policy   the policy evaluation micro-benchmark
#   make bench-listfilter   the tools/list filtering micro-benchmark

SANITIZE ?=
ifeq ($(SANITIZE),1)
BUILD ?= build-asan
SAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
else
BUILD ?= build
SAN_FLAGS :=
endif

CC ?= cc
PKGS := libuv openssl jansson yaml-0.1 sqlite3 libpq libargon2
LLHTTP_SRC ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp

OPT ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Wno-unused-parameter -Wvla
# llhttp's strict mode refuses obs-fold, whitespace before ':', and other
# lenient shapes that let two parsers disagree about a request (smuggling).
CPPFLAGS += -Isrc -I$(LLHTTP_INC) -D_GNU_SOURCE -DLLHTTP_STRICT_MODE=1
CFLAGS += -std=c11 $(OPT) $(WARN) $(SAN_FLAGS) -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
          $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDFLAGS += $(SAN_FLAGS)
LDLIBS += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm

LIB_SRC := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o)
LLHTTP_OBJ := $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o $(BUILD)/llhttp/llhttp.o
EX_SRC := $(shell find examples/mcp-sqlite -name '*.c' 2>/dev/null | sort)
EX_OBJ := $(EX_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps check unit e2e demo clean format fuzz bench bench-policy bench-listfilter asan-check
all: $(BUILD)/mcpgate $(BUILD)/mcp-sqlite $(UNIT_BIN)

# Objects depend on the flags they were built with: a stamp named after a hash
# of the compile command changes whenever the flags do, so nothing stale (say,
# llhttp built before strict mode) survives a flag change.
FLAGS_HASH := $(shell echo '$(CC) $(CPPFLAGS) $(CFLAGS) $(SAN_FLAGS)' | md5sum | cut -c1-12)
FLAGS_STAMP := $(BUILD)/.flags-$(FLAGS_HASH)
$(FLAGS_STAMP):
	@mkdir -p $(BUILD)
	@rm -f $(BUILD)/.flags-*
	@touch $@

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# llhttp is compiled from Debian's node-llhttp sources; it is not our code, so
# it gets the same hardening but not our warning set.
$(BUILD)/llhttp/%.o: $(LLHTTP_SRC)/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) -I$(LLHTTP_INC) -DLLHTTP_STRICT_MODE=1 -std=c11 $(OPT) $(SAN_FLAGS) -w -c $< -o $@

$(BUILD)/libmcpgate.a: $(LIB_OBJ) $(LLHTTP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mcpgate: $(BUILD)/src/main.o $(BUILD)/libmcpgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mcp-sqlite: $(EX_OBJ) $(BUILD)/libmcpgate.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/tap.h $(BUILD)/libmcpgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests/unit $(CFLAGS) -o $@ $< $(BUILD)/libmcpgate.a $(LDFLAGS) $(LDLIBS)

deps:
	@scripts/deps

unit: $(UNIT_BIN)
	scripts/unit $(BUILD) $(UNIT_BIN)

e2e: $(BUILD)/mcpgate $(BUILD)/mcp-sqlite
	MCPGATE_BUILD=$(abspath $(BUILD)) scripts/e2e

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e

asan-check: deps
	$(MAKE) SANITIZE=1 all
	$(MAKE) SANITIZE=1 unit
	$(MAKE) SANITIZE=1 e2e

demo: deps
	$(MAKE) all
	scripts/demo

bench: deps
	$(MAKE) all
	bench/run

# The policy micro-benchmark (ns per decision, 100-rule policy): no servers,
# no dependencies beyond the library; exits 2 if over the 1 us budget.
$(BUILD)/bench/policy_bench: bench/policy_bench.c $(BUILD)/libmcpgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libmcpgate.a $(LDFLAGS) $(LDLIBS)

bench-policy: $(BUILD)/bench/policy_bench
	$(BUILD)/bench/policy_bench

# The list filtering micro-benchmark (ms to filter a 1,000-tool tools/list
# answer per caller, 100-rule policy): exits 2 if over the 1 ms budget.
$(BUILD)/bench/listfilter_bench: bench/listfilter_bench.c $(BUILD)/libmcpgate.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/libmcpgate.a $(LDFLAGS) $(LDLIBS)

bench-listfilter: $(BUILD)/bench/listfilter_bench
	$(BUILD)/bench/listfilter_bench

# Fuzz targets: the library rebuilt with clang and libFuzzer instrumentation,
# every time (the recursive make decides what is stale), then each target.
# Every target first replays its committed corpus (fuzz/corpus/NAME); with
# FUZZ_SECONDS=N each then fuzzes for N seconds, writing new inputs to
# build-fuzz/corpus/NAME (the committed seeds stay small).
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g" SAN_FLAGS="$(FUZZ_FLAGS)" build-fuzz/libmcpgate.a
	$(MAKE) $(FUZZ_BIN)
	@# Every seed (and every past crash kept in the corpus) must still pass.
	@for f in $(FUZZ_BIN); do n=$${f#build-fuzz/fuzz_}; \
	  $$f -runs=0 fuzz/corpus/$$n 2>&1 | grep -E "^(INFO: seed corpus|Done)|ERROR" ; \
	  $$f -runs=0 fuzz/corpus/$$n >/dev/null 2>&1 || { echo "fuzz: $$f fails on its corpus"; exit 1; }; done
	@if [ -n "$(FUZZ_SECONDS)" ]; then for f in $(FUZZ_BIN); do n=$${f#build-fuzz/fuzz_}; \
	  echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
	  mkdir -p build-fuzz/corpus/$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 build-fuzz/corpus/$$n fuzz/corpus/$$n \
	    || exit 1; done; fi
build-fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_util.h tests/unit/listref.h build-fuzz/libmcpgate.a
	clang $(CPPFLAGS) -Ifuzz -std=c11 -O1 -g $(WARN) -Wno-missing-prototypes -fsanitize=fuzzer,address,undefined \
	  $(shell pkg-config --cflags $(PKGS)) -o $@ $< build-fuzz/libmcpgate.a $(LDLIBS)

format:
	clang-format -i $(shell find src examples tests/unit fuzz -name '*.[ch]')

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
