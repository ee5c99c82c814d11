# Two commands do all set-up: `make run` (the embedded default) and `make test`.
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: run test benchmark

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
