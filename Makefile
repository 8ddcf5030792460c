# Every target sets itself up: a .venv from the requirements files, node_modules from package-lock.json,
# .venv-checkov (make lint's checkov, whose pins conflict with the project's) from requirements-checkov.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHECKOV_VENV := .venv-checkov
CDK := node_modules/.bin/cdk
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help demo test synth lint checkov-lock bench image-check lock deploy clean

help:
	@echo "make demo         run the whole loop locally against an embedded AWS (moto)"
	@echo "                  on your CSV: make demo DATA=my.csv TARGET=label [CATEGORICAL=a,b] [MODEL_NAME=x] [TASK=...]"
	@echo "make test         synth + cfn-lint + the test suite"
	@echo "make synth        cdk synth into cdk.out/ with cdk-nag AwsSolutions"
	@echo "make lint         hadolint, ruff, cfn-lint, checkov (every skipped check and its reason: stacks/checkov_skips.toml)"
	@echo "make checkov-lock uv-lock requirements-checkov.txt (checkov, for make lint) into requirements-checkov.lock"
	@echo "make bench        serving, drift, model-quality and batch benchmarks"
	@echo "make image-check  check the image lock meets lambda/requirements.txt, is complete, fits the budget (no re-resolve)"
	@echo "make lock         uv-lock lambda/requirements.txt for linux x86_64 / cp312 (UPGRADE=1: newest), then image-check"
	@echo "make deploy       deploy every stack to AWS, keeping the live model"

$(VENV)/.installed: pyproject.toml requirements.txt requirements-dev.txt lambda/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The project itself (editable: the `mlops` command and every package), with the test and lint tools.
	$(PY) -m pip install --quiet -r requirements-dev.txt -e .
	touch $@

# Exactly the lock, hash-checked; uv (from .venv) installs it in seconds.
$(CHECKOV_VENV)/.installed: requirements-checkov.lock $(VENV)/.installed
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(VENV)/bin/uv pip sync --quiet --require-hashes --python $(CHECKOV_VENV)/bin/python requirements-checkov.lock
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Your own data: make demo DATA=my.csv TARGET=label [CATEGORICAL=a,b] [MODEL_NAME=name] [TASK=regression] [FLOOR=0.3].
# Each is passed only when set; MODEL_NAME only from the command line (`make deploy` reads cdk.json's below, and
# a shell may have the functions' environment variable of that name): else the demo names the model after the file.
DEMO_ARGS = $(if $(DATA),--data "$(DATA)") $(if $(TARGET),--target "$(TARGET)") \
	$(if $(CATEGORICAL),--categorical "$(CATEGORICAL)") $(if $(TASK),--task "$(TASK)") $(if $(FLOOR),--floor "$(FLOOR)") \
	$(if $(ALGORITHM),--algorithm "$(ALGORITHM)") $(if $(SEARCH),--search-candidates "$(SEARCH)") \
	$(if $(filter command line,$(origin MODEL_NAME)),--model-name "$(MODEL_NAME)")

demo: $(VENV)/.installed
	$(VENV)/bin/mlops demo $(DEMO_ARGS)

synth: $(VENV)/.installed node_modules/.installed
	$(CDK) synth --quiet

test: synth
	$(VENV)/bin/cfn-lint cdk.out/*.template.json
	$(PY) -m pytest -q

lint: synth $(CHECKOV_VENV)/.installed
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint cdk.out/*.template.json
	$(PY) -m stacks.checkov_scan --checkov $(CHECKOV_VENV)/bin/checkov cdk.out/*.template.json

# Newest versions of checkov's dependencies for CPython 3.11 and up, any platform; uv writes this command
# at the head of the lock.
checkov-lock: $(VENV)/.installed
	$(VENV)/bin/uv pip compile requirements-checkov.txt --universal --python-version 3.11 --generate-hashes \
		-o requirements-checkov.lock

bench: $(VENV)/.installed
	$(PY) bench/run.py

image-check: $(VENV)/.installed
	$(PY) bench/image_size.py

lock: $(VENV)/.installed
	$(PY) bench/image_size.py --write-lock $(if $(UPGRADE),--upgrade)

# Deploys every stack with the current code, keeping the live model (promotions: mlops promote).
MODEL_NAME ?= $(shell $(PY) -c 'import json; print(json.load(open("cdk.json"))["context"].get("model_name", "breast-cancer"))')
deploy: synth
	$(VENV)/bin/mlops deploy --model-name $(MODEL_NAME)

clean:
	rm -rf cdk.out .build .demo .bench .pytest_cache $(CHECKOV_VENV)
