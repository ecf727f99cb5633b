# One-command setup: every target creates .venv and installs the pinned tools first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LIB_CODE := interface-tls interface-certificate-transfer interface-tls-certificates layer-tls
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: test test-all test-quick test-unit test-model lint demo bench clean

# Debian packages the tests and benchmarks use: the openssl CLI (interop checks, SHA-1/MD5
# CSRs), easy-rsa (legacy PKI adoption, benchmarks), and node and java (the CA's name
# constraints against those clients, tests/test_name_constraints.py), and libfaketime (the
# simulated model's clock, tests/model/clock.py). Installed when missing (as root).

$(STAMP): requirements-dev.txt
	@missing=""; command -v openssl >/dev/null || missing="$$missing openssl"; \
	[ -x /usr/share/easy-rsa/easyrsa ] || missing="$$missing easy-rsa"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v java >/dev/null || missing="$$missing default-jdk-headless"; \
	ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing="$$missing libfaketime"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "please install the Debian packages:$$missing"; exit 1; fi; \
	fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# pytest-xdist spreads the tests over the machine's cores (the model scenarios are hook
# processes: CPU-bound and independent of each other).
PYTEST_WORKERS ?= auto

## test: lint, then every test, every model scenario included (what CI runs)
test: lint test-all

test-all: $(STAMP)
	$(PY) -m pytest -n $(PYTEST_WORKERS)

## test-quick: lint, then every test except the slow model scenarios (one 3-unit model runs)
test-quick: lint test-unit

test-unit: $(STAMP)
	$(PY) -m pytest -m "not slow"

## test-model: every model scenario (slow)
test-model: $(STAMP)
	$(PY) -m pytest -m model

lint: $(STAMP)
	$(PY) -m ruff check .
	$(VENV)/bin/vermin --quiet --no-tips --violations --target=3.8- --backport typing $(LIB_CODE)

## demo: build the example charm, run it across simulated units, check mTLS between them
demo: $(STAMP)
	$(PY) tests/demo.py

## bench: every benchmark section; the model runs N = 1, 3, 10, 30 by default (hooks forked
## from the zygote; N = 100 adds about 25 minutes): make bench BENCH_MODEL_MAX_N=100
BENCH_MODEL_MAX_N ?= 30
bench: $(STAMP)
	BENCH_MODEL_MAX_N=$(BENCH_MODEL_MAX_N) $(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .coverage build bench/results/tmp
