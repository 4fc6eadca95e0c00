# The two commands that matter: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python

.PHONY: test demo bench bench-e2e bench-scale bench-concurrency bench-object-lock venv devcloud-up devcloud-down bank-up bank-down unit e2e quality

venv: $(VENV)/.installed

$(VENV)/.installed: tests/requirements.txt tests/setup-venv.sh
	tests/setup-venv.sh

test:
	tests/run-all.sh

demo: venv
	tests/demo.sh

bench: venv
	tests/bench/run.sh

bench-e2e: venv
	tests/bench/e2e/run.sh

bench-scale: venv
	tests/bench/scale/run.sh

bench-concurrency: venv
	tests/bench/concurrency/run.sh

bench-object-lock: venv
	tests/bench/object_lock/run.sh

bank-up: venv
	$(PY) tests/servers/bank_servers.py up

bank-down:
	@if [ -x $(PY) ]; then $(PY) tests/servers/bank_servers.py down; fi

devcloud-up: venv
	tests/devcloud/up.sh

devcloud-down:
	tests/devcloud/down.sh

unit: venv
	tests/pytest.sh tests/unit

e2e: venv
	tests/pytest.sh tests/e2e

quality: venv
	tests/quality.sh
