# Thin wrapper over CMake so the quick start is two commands:
#   make run    install deps, build Release, run the broker with embedded defaults
#   make test   install deps (and the test-only ones), build with ASan+UBSan, run the
#               whole CTest suite (and, as root with apt, the Debian package's test)
#   make install [PREFIX=/usr/local] [DESTDIR=...]   build Release and install it
#   make deb    build Release and the Debian package build/release/sluice_*.deb
JOBS ?= $(shell nproc)
RELEASE := build/release
SANITIZE := build/sanitize
PREFIX ?= /usr/local

.PHONY: all deps build run demo test bench clean format install deb

all: build

deps:
	@./deploy/install-deps.sh

build: deps
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(RELEASE) -j $(JOBS)

# The broker with its embedded defaults: data in ./data, port 7400.
run: build
	$(RELEASE)/broker/sluiced

demo: build
	$(RELEASE)/bench/storage_demo --data ./data

# Also builds Release: optimised builds see warnings (-Werror) that -O0 does not.
test: build
	@./deploy/install-test-deps.sh
	cmake -S . -B $(SANITIZE) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	cmake --build $(SANITIZE) -j $(JOBS)
	cd $(SANITIZE) && ctest --output-on-failure -j $(JOBS) --timeout 300
	@./tests/install/deb.sh --if-possible $(RELEASE)

# DESTDIR=/stage stages the install (packaging); cmake --install reads it from the environment.
install: build
	DESTDIR="$(DESTDIR)" cmake --install $(RELEASE) --prefix $(PREFIX)

deb: build
	cd $(RELEASE) && cpack -G DEB

bench: build
	$(RELEASE)/bench/storage_bench

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
