"""`bendlab operators`: the operators, their parameters' typical ranges and their formulas, as a table."""

from __future__ import annotations

import shutil
import textwrap

WIDTH = 100  # the table's width when the output is not a terminal


def add_parser(sub) -> None:
    o = sub.add_parser("operators", help="list the operators, their formulas and typical ranges")
    o.set_defaults(func=run)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]], title: str = "", width: int | None = None) -> str:
    """`rows` under `header`, each column as wide as its widest cell and two spaces from the next; the last column
    wrapped at spaces to `width` (default: the terminal's, `WIDTH` when not a terminal), its further lines under
    its start; `title`, wrapped, above. `bendlab operators` and `bendlab targets` print with it."""
    width = width or shutil.get_terminal_size((WIDTH, 24)).columns
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header) - 1)]
    indent = sum(widths) + 2 * len(widths)
    lines = textwrap.wrap(title, width)
    for r in (header, *rows):
        last = textwrap.wrap(r[-1], max(width - indent, 20)) or [""]
        lines.append(("".join(f"{c:<{w}}  " for c, w in zip(r, widths)) + last[0]).rstrip())
        lines += [" " * indent + more for more in last[1:]]
    return "\n".join(lines)


def run(a) -> None:
    from ...bend import catalogue  # what the operators are, without torch: the table prints at once
    rows = []
    for name, formula in catalogue.FORMULAS.items():
        lo, hi = catalogue.PARAM_RANGES[name]
        n = catalogue.N_PARAMS.get(name)
        param = ("no parameter" if name in catalogue.NO_PARAM_OPERATORS else f"{n} values, each {lo:g} .. {hi:g}" if n
                 else f"r: {lo:g} .. {hi:g}" + (", integer" if name in catalogue.INTEGER_OPERATORS else ""))
        rows.append((name, param, formula))
    print(table(("operator", "parameter (typical)", "formula"), rows))
