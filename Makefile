# The README's two commands: `make demo` and `make test`.
# Each installs what it needs on a fresh Debian 12 machine.

SHELL := /bin/bash
PY := /usr/bin/python3
VENV := .venv
# Debian packages the daemon and the test suite run on.
APT_PACKAGES := python3 python3-venv python3-pip python3-gi python3-pydbus \
	python3-sdnotify python3-watchdog python3-jinja2 python3-yaml \
	python3-dbus python3-dbusmock python3-hatchling dbus libglib2.0-bin systemd
# Extra packages for building the .deb and the boot test in systemd-nspawn.
APT_PACKAGES_SYSTEM := dpkg-dev debhelper dh-python pybuild-plugin-pyproject \
	python3-hatchling lintian systemd-container mmdebstrap man-db \
	python3-pytest python3-hypothesis
TEST_TOOLS := pytest==8.3.3 hypothesis==6.112.2 editables==0.5 ruff==0.6.9 mypy==1.11.2 types-PyYAML==6.0.12.20240917
# Debian's own PATH: pyenv shims must not hijack pybuild or the system python.
DEB_PATH := /usr/sbin:/usr/bin:/sbin:/bin

.PHONY: deps deps-system venv demo test test-unit deb test-system bench fuzz clean checkbox-venv

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

# dpkg-buildpackage writes next to the source tree: move what it made to dist/,
# then hold the package to lintian (no errors, no warnings).
deb: deps-system
	PATH=$(DEB_PATH) dpkg-buildpackage -us -uc -b
	mkdir -p dist
	v=$$(dpkg-parsechangelog -S Version) && \
		mv ../resumed_$${v}_all.deb ../resumed_$${v}_*.buildinfo ../resumed_$${v}_*.changes dist/ && \
		PATH=$(DEB_PATH) lintian --fail-on error,warning dist/resumed_$${v}_*.changes

# The boot-and-reboot test of the .deb in systemd-nspawn (tests/system).
test-system: deps-system venv
	PATH="$(CURDIR)/$(VENV)/bin:$(DEB_PATH)" $(VENV)/bin/python -m pytest tests/system

# PlainBox's own code (checkbox-ng 1.18.1 from PyPI) in a venv outside the
# repository, for the differential tests and the benchmarks.
checkbox-venv:
	tools/checkbox-venv.sh

bench: venv checkbox-venv
	$(VENV)/bin/python -m benchmarks.run $(BENCH_ARGS)

fuzz: venv
	RESUMED_FUZZ_EXAMPLES=100000 $(VENV)/bin/python -m pytest tests/unit -k fuzz -p no:cacheprovider
	RESUMED_FUZZ_EXAMPLES=50000 RESUMED_LONG=1 $(VENV)/bin/python -m pytest tests/reliability \
		-p no:cacheprovider

clean:
	rm -rf $(VENV) build dist .pytest_cache .hypothesis
