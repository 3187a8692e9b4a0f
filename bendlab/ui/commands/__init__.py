"""The `bendlab` commands, one module each (diffusers' `commands/` habit): each has `add_parser(sub)`, which
declares its flags (every default shown in a help string is read from the library, never retyped), and `run(a)`,
which parses nothing more, calls the library and prints what it wrote. `common` holds what several share.
`bendlab.ui.cli` assembles them into one parser (`COMMANDS`, in the order `bendlab --help` lists them)."""

from . import features, live, music, operators, render, targets, video

COMMANDS = (render, video, music, features, operators, targets, live)
