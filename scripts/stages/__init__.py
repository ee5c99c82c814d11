"""The stages: one module per rule (``rules/<stage>.smk`` runs it with ``script:``). A stage
reads its inputs, calls the libraries below it and writes its outputs; nothing imports a
stage (a test checks it)."""
