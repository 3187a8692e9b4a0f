"""`bendlab operators`: the operators, their formulas and typical ranges."""

from __future__ import annotations

from ...bend import operators


def add_parser(sub) -> None:
    o = sub.add_parser("operators", help="list the operators, their formulas and typical ranges")
    o.set_defaults(func=run)


def run(a) -> None:
    for k, v in operators.FORMULAS.items():
        lo, hi = operators.PARAM_RANGES[k]
        n = operators.N_PARAMS.get(k)
        typical = "no parameter" if k in operators.NO_PARAM_OPERATORS else \
            f"{n} values, each typically {lo:g} .. {hi:g}" if n else f"typical r: {lo:g} .. {hi:g}"
        print(f"{k:10s} {v:45s} {typical}")
