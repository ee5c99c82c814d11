# Two commands do all set-up: `make run` (the embedded default) and `make test`.
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test benchmark sweep

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(VENV)/bin/snakemake --cores 2

test: $(STAMP)
	$(VENV)/bin/python -m pytest

benchmark: $(STAMP)
	$(VENV)/bin/python benchmarks/embedded_default.py

# The paradox as a function of training budget (sweep.yaml): ~1 hour on 2 cores. The figure
# and the generated verdict are copied to docs/ for the README.
sweep: $(STAMP)
	$(VENV)/bin/snakemake --cores 2 --snakefile Snakefile --directory sweep \
		--configfile $(CURDIR)/config.yaml $(CURDIR)/sweep.yaml
	mkdir -p docs
	cp sweep/results/report/paradox_budget.png docs/paradox_sweep.png
	cp sweep/results/report/paradox.md docs/paradox_sweep.md
