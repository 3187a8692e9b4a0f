"""The `bendlab` command line: render bent images, audio-reactive video, and the audio features behind it.

    bendlab render "a floating orb" --op add --param 1 --layer 40 --out orb.png
    bendlab render "a floating orb" --recipe bends.toml --out orb.png
    bendlab video song.wav --op rotate1 --feature lfo:0.25 --layer 40 --out song.mp4
    bendlab features song.wav --out features.csv --plot features.png
    bendlab operators
    bendlab targets --model path/to/diffusers-folder
"""

from __future__ import annotations

import argparse
import re
import sys

from .commands import COMMANDS

class Parser(argparse.ArgumentParser):
    """argparse that reads any number as a value, not an option: `--param -inf`, `--range -1e3 5`
    (argparse alone takes only -1 and -1.5 as numbers)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        number = r"(\d+\.?\d*(e[-+]?\d+)?|\.\d+(e[-+]?\d+)?|inf(inity)?|nan)"
        # a number, or comma-separated numbers (--param -1,0,0,1) whose first is negative
        self._negative_number_matcher = re.compile(rf"^-{number}(\s*,\s*-?{number})*$", re.I)

    def error(self, message):
        """One line, as for every other bad input (argparse alone prints the whole usage first)."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `bendlab` parser: one sub-command per module of `ui.commands`."""
    ap = Parser(prog="bendlab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return ap


def main(argv=None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    from ..video.cluster import ClusterError  # video/ imports torch: not for the parser (`bendlab --help`)
    try:
        a.func(a)
    except (ValueError, OSError, MemoryError, ClusterError) as e:
        message = " ".join(str(e).split()) or type(e).__name__
        print(f"bendlab {a.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bendlab {a.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
