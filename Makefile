# The few commands people need. `make help` lists them.
.PHONY: help install demo test test-all lint format bench sample

help:
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

install: ## editable install with test tools (CPU torch first, for the model extras)
	pip install torch==2.13.0 -e '.[test,hf,serve]'

demo: ## build the demo dataset into out/demo
	mminstruct build configs/demo.yaml

test: ## the default test suite (no slow or GPU tests)
	python -m pytest

test-all: ## every test, slow ones included (GPU tests skip without a GPU)
	python -m pytest -m ''

lint: ## ruff lint and format check
	ruff check . && ruff format --check .

format: ## apply ruff fixes and formatting
	ruff check --fix . && ruff format .

bench: ## the benchmarks (see benchmarks/README.md); results go to BENCHMARKS.md by hand
	python benchmarks/run.py

sample: ## regenerate the bundled demo sample (mminstruct/sample)
	python -m mminstruct.sample mminstruct/sample
