"""Colours and marker shapes for any number of streams, switches or objectives: tab10 up to ten
names, tab20 up to twenty, then its colours again (a mechanism config has more than ten streams)."""

import matplotlib

SHAPES = "osD^vP*X"


def palette(names: list[str]) -> dict[str, tuple]:
    cmap = matplotlib.colormaps["tab10" if len(names) <= 10 else "tab20"]
    return {n: cmap(i % cmap.N) for i, n in enumerate(names)}


def markers(names: list) -> dict:
    return {n: SHAPES[i % len(SHAPES)] for i, n in enumerate(names)}
