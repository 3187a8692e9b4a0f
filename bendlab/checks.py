"""Input checks, written once: every entry point (Python call, recipe, command line) checks a value with these.

Each check raises `BendlabValueError` (a ValueError, so callers that catch ValueError keep working) with one line
that names the bad value and says what is accepted, and returns the value in the form the caller uses. They do
no expensive work: they run before any model loads or audio is analysed. As librosa's `util.valid_audio` is
called at every librosa entry point, these are called at every bendlab one.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from pathlib import Path
from typing import Iterable


class BendlabValueError(ValueError):
    """A bad input, in one line: what was given and what is accepted."""


class MissingFileError(BendlabValueError, FileNotFoundError):
    """An input file or folder that does not exist (a ValueError, and a FileNotFoundError as before)."""


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(v) -> bool:
    """A real number: an int or float, numpy's too (not a bool, not a string)."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def is_int(v) -> bool:
    """An integer, numpy's too (not a bool)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def check_int(name: str, v, low: int | None = None, high: int | None = None, accepted: str = "") -> int:
    """An integer (not a bool) in low..high (either end may be None: unbounded)."""
    ok = is_int(v) and (low is None or v >= low) and (high is None or v <= high)
    if not ok:
        shown = "2**63-1" if high == 2**63 - 1 else high
        span = (f"in {low}..{shown}" if low is not None and high is not None else
                f">= {low}" if low is not None else f"<= {high}" if high is not None else "")
        raise BendlabValueError(f"{name} {_show(v)} is not an integer {span}".rstrip() +
                                (f"; accepted: {accepted}" if accepted else ""))
    return int(v)


def check_number(name: str, v, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False, accepted: str = "") -> float:
    """A finite int or float (not a bool) within [low, high] (open ends if told; None: unbounded)."""
    accepted = f"; accepted: {accepted}" if accepted else ""
    if not (is_number(v) and math.isfinite(v)):
        raise BendlabValueError(f"{name} {_show(v)} is not a finite number{accepted}")
    ok = low is None or (v > low if low_open else v >= low)
    ok = ok and (high is None or (v < high if high_open else v <= high))
    if not ok:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise BendlabValueError(f"{name} {_show(v)} is not {' and '.join(s for s in (lo, hi) if s)}{accepted}")
    return float(v)


def check_choice(name: str, v, choices: Iterable[str]) -> str:
    """One of a fixed set of strings."""
    choices = tuple(choices)
    if not isinstance(v, str) or v not in choices:
        raise BendlabValueError(f"unknown {name} {_show(v)}; accepted: {', '.join(choices)}")
    return v


def check_str(name: str, v, *, empty: bool = True) -> str:
    """A string (non-empty unless `empty`)."""
    if not isinstance(v, str) or (not empty and not v.strip()):
        raise BendlabValueError(f"{name} {_show(v)} is not a{'' if empty else ' non-empty'} string")
    return v


def check_strings(name: str, v) -> list[str]:
    """A list (or tuple) of one or more strings; a bare string is refused (it is not a list of prompts)."""
    if isinstance(v, str) or not isinstance(v, (list, tuple)) or not v or not all(isinstance(s, str) for s in v):
        raise BendlabValueError(f"{name} {_show(v)}: accepted: a list of one or more strings")
    return list(v)


def is_list(v) -> bool:
    """A list, tuple, range or 1-D array: a sequence of values, not a string, a mapping or a bare number."""
    return not isinstance(v, (str, bytes, dict)) and hasattr(v, "__len__") and hasattr(v, "__getitem__") and \
        getattr(v, "ndim", 1) == 1


def check_list(name: str, v) -> list:
    """A list (tuple, range, 1-D array) of values, as a list; a bare string, number or mapping is refused."""
    if not is_list(v):
        raise BendlabValueError(f"{name} {_show(v)} is not a list; accepted: a list (or tuple) of values")
    return list(v)


def check_numbers(name: str, v, *, min_len: int = 1) -> list[float]:
    """A list (tuple, range, 1-D array) of at least `min_len` finite numbers; a bare string or number is refused."""
    if not is_list(v) or len(v) < min_len or not all(is_number(x) and math.isfinite(x) for x in v):
        raise BendlabValueError(f"{name} {_show(v)} are not a list of {min_len} or more finite numbers")
    return [float(x) for x in v]


def check_ints(name: str, v, low: int | None = None, high: int | None = None, *, min_len: int = 1) -> list[int]:
    """A list (tuple, range, 1-D array) of at least `min_len` integers in low..high."""
    if not is_list(v) or len(v) < min_len or not all(is_int(x) and (low is None or x >= low) and
                                                      (high is None or x <= high) for x in v):
        span = f" in {low}..{high}" if low is not None and high is not None else f" >= {low}" if low is not None \
            else ""
        raise BendlabValueError(f"{name} {_show(v)}: accepted: a list of {min_len} or more integers{span}")
    return [int(x) for x in v]


def check_input_file(name: str, path, suffixes: Iterable[str] | None = None) -> Path:
    """A path (str or PathLike) to an existing regular file, with one of `suffixes` (lower-case, with the dot)."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise BendlabValueError(f"{name} {_show(path)} is not a path to a file")
    p = Path(path)
    try:
        exists = p.is_file()
    except OSError:  # a symlink loop, a name too long
        exists = False
    if not exists:
        raise MissingFileError(f"{name} {str(p)!r} does not exist or is not a file")
    if suffixes is not None:
        suffixes = tuple(suffixes)
        if p.suffix.lower() not in suffixes:
            raise BendlabValueError(f"{name} {str(p)!r} has suffix {p.suffix!r}; accepted: {', '.join(suffixes)}")
    return p


def check_host_port(flag: str, text, example_port: int = 9000) -> tuple[str, int]:
    """`flag`'s HOST:PORT or PORT (host 127.0.0.1 unless given) as (host, port); port 0 asks for a free one."""
    e = example_port
    accepted = (f"accepted: HOST:PORT or PORT, e.g. 127.0.0.1:{e}, 0.0.0.0:{e} (every interface), {e}, [::1]:{e}")
    if not isinstance(text, str) or not text.strip():
        raise BendlabValueError(f"{flag} {text!r:.60} is not an address; {accepted}")
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not port.isdigit() or int(port) > 65535:
        raise BendlabValueError(f"{flag} {text!r}: port {port!r} is not in 0..65535; {accepted}")
    if not re.fullmatch(r"[A-Za-z0-9._:%-]+", host):
        raise BendlabValueError(f"{flag} {text!r}: host {host!r} is not a host name or IP address; {accepted}")
    return host, int(port)
