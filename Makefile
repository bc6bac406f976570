# Every target sets itself up: a fresh clone needs nothing but python3 (3.10+) and make.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Weight-carrying npm packages (DESIGN.md section 6), packed into the venv; node is never run.
NPM_DIR      := $(VENV)/share/modengine/npm
NPM_PACKAGES := nsfwjs@4.4.0 @mediapipe/hands@0.4.1675469240
NPM_STAMP    := $(NPM_DIR)/.packed-stamp
# Photographs with bare hands for the hand-detector tests: two files of Debian's opencv-doc
# sample data, taken out of the downloaded .deb (nothing is installed system-wide).
PHOTO_DIR    := $(VENV)/share/modengine/photos
PHOTO_FILES  := right04.jpg messi5.jpg
PHOTO_SOURCE := ./usr/share/doc/opencv-doc/examples/data
PHOTO_STAMP  := $(PHOTO_DIR)/.unpacked-stamp
PYTEST_ARGS ?=
VIDEO ?=
BENCH_QUICK ?=

.PHONY: install browser photos test test-unit test-integration demo bench lint clean

install: $(STAMP) $(NPM_STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): Makefile | $(STAMP)
	mkdir -p $(NPM_DIR)
	cd $(NPM_DIR) && npm pack --silent $(NPM_PACKAGES) >/dev/null
	touch $(NPM_STAMP)

# The report test renders in Debian's Chromium (never a downloaded browser). Installed here when
# missing and we may (root with apt-get); otherwise that one test says why it skipped.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the report test"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed; the report rendering test will skip"; \
	  else echo "no chromium and no root apt-get; the report rendering test will skip"; fi; }

photos: $(PHOTO_STAMP)

# Without apt-get or the registry, the photo tests skip and say why; nothing else depends on it.
$(PHOTO_STAMP):
	@mkdir -p $(PHOTO_DIR); tmp=$$(mktemp -d); \
	if command -v apt-get >/dev/null 2>&1 && (cd $$tmp && { apt-get download -qq opencv-doc \
	    || { apt-get update -qq && apt-get download -qq opencv-doc; }; }) >/dev/null 2>&1; then \
	  dpkg-deb --fsys-tarfile $$tmp/opencv-doc_*.deb \
	    | tar -x -C $$tmp $(addprefix $(PHOTO_SOURCE)/,$(PHOTO_FILES)) \
	  && cp $(addprefix $$tmp/$(PHOTO_SOURCE)/,$(PHOTO_FILES)) $(PHOTO_DIR)/ && touch $@; \
	else echo "opencv-doc could not be downloaded; the real-photo hand tests will skip"; fi; \
	rm -rf $$tmp

test: install browser photos
	$(PY) -m pytest tests -q $(PYTEST_ARGS)

test-unit: install photos
	$(PY) -m pytest tests/unit -q $(PYTEST_ARGS)

test-integration: install browser
	$(PY) -m pytest tests/integration -q $(PYTEST_ARGS)

demo: install
	$(PY) -m engine.demo $(VIDEO)

bench: install
	$(PY) -m benchmarks.run $(if $(BENCH_QUICK),--quick,)

lint: install
	$(VENV)/bin/ruff check engine models kernels tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
