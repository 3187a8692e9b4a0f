"""Recipes: the settings of a render or a video in a TOML (.toml) or YAML (.yaml/.yml) file, read by one reader
with a schema (known keys, their types; ranges are checked by the objects they build).

A render recipe holds render settings and a list of bends; a video recipe holds `VideoSpec` settings and a list
of mappings:

    # render                                  # video
    prompt = "a gorgeous landscape"            prompts = ["a floating orb", "mice"]
    steps = 50                                 fps = 24
    [[bend]]                                   [[mapping]]
    op = "add"                                 feature = "rms"
    param = 2.0                                op = "rotate1"
    layer = [20, 30]                           layer = 40

Precedence, the same everywhere: **a flag given on the command line > the recipe > the library default**
(`bendlab.cli` passes only the flags you gave; a setting missing from both keeps the default of `render` or
`VideoSpec`). YAML is read with the safe loader, and aliases (`*name`) are refused: a recipe has no use for
them, and nested aliases expand exponentially ("billion laughs").

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

import tomllib
from dataclasses import fields
from pathlib import Path

from ..checks import BendlabValueError, check_input_file, is_int, is_number

SUFFIXES = (".toml", ".yaml", ".yml")
MAX_BYTES = 1 << 20  # a recipe is a few hundred bytes; a bigger file is not one
MAX_DEPTH = 32  # levels of nesting: a recipe has three (settings, a list of tables, a layer range)


def _finite(v) -> bool:
    return is_number(v) and v == v and abs(v) != float("inf")


# value kinds: a checker and the words used in errors (ranges are checked by the objects the values build)
KINDS = {
    "str": (lambda v: isinstance(v, str), "a string"),
    "int": (is_int, "an integer"),
    "float": (_finite, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "list[str]": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    "list[float]": (lambda v: isinstance(v, list) and all(_finite(x) for x in v), "a list of numbers"),
}


def field_rule(type_text: str, optional: bool = False):
    """(check, words) for a field annotated `type_text` ("int", "float | None", ...): None is accepted when the
    type admits it or `optional` (its default is None: "the model's usual value"); a type KINDS does not know
    accepts any value (the object built from it checks it)."""
    parts = [t.strip() for t in str(type_text).split("|")]
    optional = optional or "None" in parts
    base = " | ".join(t for t in parts if t != "None")
    ok, words = KINDS.get(base, (lambda v: True, "a value"))
    if not optional:
        return ok, words
    return (lambda v: v is None or ok(v)), f"{words} or null"


# render settings: keyword arguments of bend.render.render and their types (tests check each is one); None: the
# library's default (the model's usual steps and guidance, the model's native size, the shipped model)
RENDER_SETTINGS = {"prompt": "str", "negative_prompt": "str | None", "model": "str | None", "seed": "int",
                   "steps": "int | None", "guidance": "float | None", "init_image": "str | None",
                   "strength": "float", "height": "int | None", "width": "int | None"}


def video_settings() -> dict[str, str]:
    """VideoSpec's fields (less audio and mappings) and their types, read from the dataclass: one source (a
    field whose default is None accepts null)."""
    from ..video.spec import VideoSpec
    return {f.name: str(f.type) + (" | None" if f.default is None and "None" not in str(f.type) else "")
            for f in fields(VideoSpec) if f.name not in ("audio", "mappings")}


class RecipeError(BendlabValueError):
    """A recipe that cannot be used: unreadable, unknown key, wrong type (one line naming the file)."""


def _no_alias_loader():
    import yaml

    class Loader(yaml.SafeLoader):
        """The safe loader, refusing aliases, duplicate keys (TOML refuses them too) and deep nesting."""
        depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise RecipeError(f"YAML alias *{self.peek_event().anchor} is not accepted in a recipe; write the "
                                  "value out")
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise RecipeError(f"it is nested deeper than {MAX_DEPTH} levels; accepted: a table of settings")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node, deep=False):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    continue  # an unhashable key: the safe loader's own error follows
                if key in seen:
                    raise RecipeError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1}); accepted: "
                                      "each key once")
                seen.add(key)
            return super().construct_mapping(node, deep)
    return Loader


def load(path: str | Path) -> dict:
    """The top-level table of a TOML or YAML file, with one-line errors for anything that is not one."""
    import yaml
    try:
        p = check_input_file("recipe", path, SUFFIXES)
    except ValueError as e:
        raise RecipeError(str(e)) from None
    if p.stat().st_size > MAX_BYTES:
        raise RecipeError(f"recipe {str(p)!r} is {p.stat().st_size} bytes; accepted: up to {MAX_BYTES} bytes")
    try:
        text = p.read_text()
        data = tomllib.loads(text) if p.suffix.lower() == ".toml" else yaml.load(text, Loader=_no_alias_loader())
    except RecipeError as e:
        raise RecipeError(f"recipe {str(p)!r}: {e}") from None
    except RecursionError:
        raise RecipeError(f"recipe {str(p)!r} is nested deeper than Python reads; accepted: a table of settings "
                          f"nested at most {MAX_DEPTH} levels") from None
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as e:
        raise RecipeError(f"recipe {str(p)!r} is not valid {p.suffix[1:].upper()}: {str(e).splitlines()[0]}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {str(p)!r} holds a {type(data).__name__}; accepted: a table of settings")
    return data


def _entries(p: Path, data: dict, key: str, build) -> list:
    raw = data.pop(key, [])
    if not isinstance(raw, list):
        raise RecipeError(f"recipe {str(p)!r}: {key} = {raw!r:.40} is not a list of tables; accepted: [[{key}]] "
                          "tables (TOML) or a list of mappings (YAML)")
    out = []
    for k, entry in enumerate(raw, 1):
        if not isinstance(entry, dict):
            raise RecipeError(f"recipe {str(p)!r}: {key} entry {k} is {entry!r:.40}, not a table of its keys")
        try:
            out.append(build(entry))
        except (TypeError, ValueError) as e:  # TypeError: a dataclass given a key it does not have
            raise RecipeError(f"recipe {str(p)!r}: {key} entry {k}: {e}") from None
    return out


def _settings(p: Path, data: dict, schema: dict[str, str], entry_key: str, other_key: str) -> dict:
    for k, v in data.items():
        if k not in schema:
            hint = f" ([[{other_key}]] belongs to the other kind of recipe)" if k == other_key else ""
            raise RecipeError(f"recipe {str(p)!r}: unknown key {k!r}{hint}; accepted: [[{entry_key}]] and "
                              f"{', '.join(sorted(schema))}")
        ok, words = field_rule(schema[k])
        if not ok(v):
            raise RecipeError(f"recipe {str(p)!r}: {k} = {v!r:.40} is not {words}")
    return data


def read_render(path: str | Path) -> dict:
    """A render recipe as keyword arguments of `bend.render.render` plus "bends" (a list of Bend)."""
    from ..bend.bends import Bend
    p = Path(path)
    data = load(p)
    bends = _entries(p, data, "bend", Bend.from_dict)
    return {**_settings(p, data, RENDER_SETTINGS, "bend", "mapping"), "bends": bends}


def read_video(path: str | Path) -> dict:
    """A video recipe as keyword arguments of `video.spec.VideoSpec`, with "mappings" a list of Mapping."""
    from ..mapping import Mapping

    def mapping(d):
        names = {f.name for f in fields(Mapping)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise RecipeError(f"unknown key(s) {unknown}; accepted: {', '.join(sorted(names))}")
        return Mapping(**d)
    p = Path(path)
    data = load(p)
    mappings = _entries(p, data, "mapping", mapping)
    return {**_settings(p, data, video_settings(), "mapping", "bend"), "mappings": mappings}


def merge(recipe: dict, flags: dict) -> dict:
    """The precedence rule, once: flags given (not None) > the recipe > (absent: the library default)."""
    return {**recipe, **{k: v for k, v in flags.items() if v is not None}}
