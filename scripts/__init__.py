"""The Quality-Utility Paradox pipeline, in layers (imports point down only; a test checks it):

- ``stages``: one module per rule, the only modules a rule's ``script:`` runs; nothing imports them;
- ``analysis``: statistics, collection of stage outputs, tables, figures, adaptation cost, drift,
  retention, utility and the paradox's claims;
- ``training``: SFT / DFT fine-tuning (and the built-in student's pretraining) through TRL;
- ``backends``: models and device placement, and one interface each, chosen by config through a
  registry, for generation (transformers / vLLM), oracles (built-in / OpenAI-compatible API) and
  rewards (built-in / learned reward models);
- ``data``: problem sets, answer checking, rejection sampling and the data streams;
- ``organism``: the CPU model organism -- word problems, the built-in student, oracle and reward;
- ``infrastructure``: stage logging, records, config checks, registries, provenance, the
  manifest and the frozen archive.
"""
