"""Models and device placement (``models``), and one interface each, chosen by config through a
registry: generation (``generation``: transformers / vLLM), oracles (``oracles``: built-in /
OpenAI-compatible) and rewards (``rewards``: built-in / learned)."""
