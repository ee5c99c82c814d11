"""The study's data: problem sets in one schema (``problems``), answer checking with math-verify
(``verification``), rejection sampling of native traces (``rejection_sampling``) and the data
streams over the solvable set (``streams``)."""
