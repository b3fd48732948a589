# handpose: `make test` sets up a bare Linux machine and runs every check; `make run` sets up and
# launches the app. A second run reinstalls nothing unless pyproject.toml changed.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSSTAMP := $(VENV)/.sysdeps
# System packages: the virtual X server for GUI tests and the Qt xcb platform plugin's libraries,
# libusb for open3d, EGL/GL for the renderers and the 3D view.
APT_PACKAGES := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
	libxcb-xinerama0 libxcb-cursor0 libxcb-shape0 libxkbcommon-x11-0 libusb-1.0-0 libegl1 libgl1 \
	libgl1-mesa-dri libglib2.0-0 libfontconfig1 libdbus-1-3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
XVFB := xvfb-run -a -s "-screen 0 1280x1024x24"

.PHONY: test run screenshot lint types imports pytest setup sysdeps clean

test: setup lint types imports pytest

setup: $(SYSSTAMP) $(STAMP)

$(SYSSTAMP):
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing system packages:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Python 3.11)"; exit 1; }
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	@touch $@

$(STAMP): pyproject.toml | $(SYSSTAMP)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .

types: setup
	$(VENV)/bin/mypy core

# import-linter needs one top-level package on disk; the source keeps core/, training/ and app/
# at the top (DESIGN.md), so the check runs on a tree of symlinks shaped like the installed package.
imports: setup
	@mkdir -p build/lint/handpose && cp handpose/__init__.py build/lint/handpose/
	@for d in core training app assets; do ln -sfn ../../../$$d build/lint/handpose/$$d; done
	cd build/lint && ../../$(VENV)/bin/lint-imports --no-logo --config ../../pyproject.toml

pytest: setup
	env -u QT_QPA_PLATFORM_PLUGIN_PATH $(XVFB) $(PY) -m pytest -q $(PYTEST_ARGS)

run: setup
	env -u QT_QPA_PLATFORM_PLUGIN_PATH $(VENV)/bin/handpose-app $(ARGS)

# The README's screenshot: the main window on the demo recording, under the virtual X server.
screenshot: setup
	env -u QT_QPA_PLATFORM_PLUGIN_PATH $(XVFB) $(VENV)/bin/handpose-app --source demo \
		--screenshot docs/screenshot.png $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
