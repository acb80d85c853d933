# The README's two commands: `make demo` and `make test`.
# Each installs what it needs on a fresh Debian 12 machine.

SHELL := /bin/bash
PY := /usr/bin/python3
VENV := .venv
# Debian packages the daemon and the test suite run on.
APT_PACKAGES := python3 python3-venv python3-pip python3-gi python3-pydbus \
	python3-sdnotify python3-watchdog python3-jinja2 python3-yaml \
	python3-dbusmock python3-hatchling dbus libglib2.0-bin systemd
# Extra packages for building the .deb and the boot test in systemd-nspawn.
APT_PACKAGES_SYSTEM := dpkg-dev debhelper dh-python pybuild-plugin-pyproject \
	python3-hatchling lintian systemd-container mmdebstrap man-db
TEST_TOOLS := pytest==8.3.3 hypothesis==6.112.2 editables==0.5
# Debian's own PATH: pyenv shims must not hijack pybuild or the system python.
DEB_PATH := /usr/sbin:/usr/bin:/sbin:/bin

.PHONY: deps deps-system venv demo test test-unit deb bench fuzz clean

# Install only what is missing; `apt-get update` first, since a fresh machine
# has no package lists.
deps:
	@missing=$$(for p in $(APT_PACKAGES) $(EXTRA_APT); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps-system:
	@$(MAKE) --no-print-directory deps EXTRA_APT="$(APT_PACKAGES_SYSTEM)"

$(VENV)/.stamp: pyproject.toml
	$(PY) -m venv --system-site-packages $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check $(TEST_TOOLS)
	$(VENV)/bin/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: deps $(VENV)/.stamp

demo: venv
	$(VENV)/bin/python -m resumed.demo

test: deps-system venv
	PATH="$(CURDIR)/$(VENV)/bin:$(DEB_PATH)" $(VENV)/bin/python -m pytest

test-unit: venv
	$(VENV)/bin/python -m pytest tests/unit

deb: deps-system
	PATH=$(DEB_PATH) dpkg-buildpackage -us -uc -b
	mkdir -p dist && mv ../resumed_*.deb ../resumed_*.buildinfo ../resumed_*.changes dist/ 2>/dev/null || true

bench: venv
	$(VENV)/bin/python -m benchmarks.run

fuzz: venv
	RESUMED_FUZZ_EXAMPLES=100000 $(VENV)/bin/python -m pytest tests/unit -k fuzz -p no:cacheprovider

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis
