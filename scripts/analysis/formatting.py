"""How numbers appear in every report table and figure title, and the one Markdown-table writer
(polars prints a frame of already formatted cells as a Markdown table)."""

import math

import polars as pl

DASH = "–"  # a value that was not measured


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table of string cells (``|`` inside a cell is escaped)."""
    cells = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    frame = pl.DataFrame(cells, schema={h: pl.String for h in header}, orient="row")
    with pl.Config(
        tbl_formatting="MARKDOWN",
        tbl_hide_column_data_types=True,
        tbl_hide_dataframe_shape=True,
        fmt_str_lengths=60000,
        tbl_width_chars=60000,
        tbl_rows=-1,
        tbl_cols=-1,
    ):
        return str(frame)


def fmt(v, spec: str = ".3f", scale: float = 1.0) -> str:
    """A number, or a dash where it is missing or not finite."""
    return DASH if v is None or not math.isfinite(v) else format(v * scale, spec)


def rho(v: float) -> str:
    """A correlation, or n/a where it is undefined."""
    return "n/a" if math.isnan(v) else f"{v:+.2f}"


def p_value(p: float) -> str:
    """A p-value as a sentence quotes it: ``p = 0.042``, ``p < 0.001``, or ``p n/a``."""
    if not math.isfinite(p):
        return "p n/a"
    return f"p = {p:.2g}" if p >= 0.001 else "p < 0.001"


def interval(c: dict, spec: str = ".2f", scale: float = 1.0, missing: str = DASH) -> str:
    """``value [low, high]`` of a ``{value, low, high}`` record; the value alone without bounds."""
    if not math.isfinite(c["value"]):
        return missing
    if not math.isfinite(c["low"]):
        return format(c["value"] * scale, spec)
    return f"{c['value'] * scale:{spec}} [{c['low'] * scale:{spec}}, {c['high'] * scale:{spec}}]"
