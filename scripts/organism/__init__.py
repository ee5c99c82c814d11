"""The CPU model organism the embedded default runs: arithmetic word problems with a known
computation graph (``word_problems``), the built-in student (``student``), the built-in symbolic
oracle (``oracle``) and process reward (``reward``). Registered as implementations of the
backends' interfaces; nothing outside ``scripts.backends`` and ``scripts.data`` registries loads
them."""
