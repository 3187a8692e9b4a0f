"""The performer's live controls: MIDI (mido + python-rtmidi) and OSC (python-osc) change a live session's
prompt and each mapping's low/high/layer (or replace its audio feature), thread-safe; every change is logged.

`Controls` holds the state the live render loop reads once a frame (`Controls.snapshot`); MIDI and OSC write it
from their own threads. A bad value from a controller (a range the operator refuses, a layer past the last step,
an OSC message of the wrong type) is refused with the same one-line `BendlabValueError` a Python call gets, turned
into a `ControlWarning` and logged; the session plays on.

MIDI in is `live.midi_in`, OSC in `live.osc`.

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import math
import re
import statistics
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, replace

from ..checks import BendlabValueError, check_choice, check_int, check_number, check_str, check_strings
from ..mapping import Mapping
from ..paper import LAYER, fit_layer

MAX_PROMPT_CHARS = 1000  # a longer prompt (from Python, OSC) is refused
FIELDS = ("low", "high", "layer", "param")  # what a control sets on a mapping
TICKS_PER_BEAT = 24  # MIDI clock
CLOCK_TICKS = 96  # recent clock ticks kept for the tempo (4 beats)
CLOCK_TIMEOUT = 0.5  # seconds without a clock tick: the MIDI clock is not running
MIN_TICKS = 7  # clock ticks before their tempo is used (a quarter of a beat)
CC_FORMAT = "CC=J.FIELD[:LO:HI], e.g. 1=0.high:0:6.2832, 7=0.layer, 74=0.param (CC 0..127, J a mapping, FIELD " \
    "low|high|layer|param; low and high need LO:HI, layer defaults to 0..steps, param is 0..1)"
class ControlWarning(UserWarning):
    """A live control fault (a MIDI port gone, a malformed OSC message, a refused value): the session plays on."""


@dataclass(frozen=True)
class MappingControl:
    low: float
    high: float
    layer: int
    param: float | None  # a CC's value 0..1 replacing the mapping's normalised audio feature (None: audio drives it)


@dataclass(frozen=True)
class Snapshot:
    prompt: int  # index into prompts
    prompts: tuple[str, ...]
    mappings: tuple[MappingControl, ...]
    tempo: float  # beats per minute: from MIDI clock (24 per beat) when it is running, else the bpm given
    beats: float  # beats elapsed at time t (MIDI clock ticks/24 when it is running, else t*bpm/60)
    velocity: float  # 0..1: highest velocity/127 of the notes held now (0 when none)
    onset: float  # 0..1: highest velocity/127 of notes started since the previous snapshot (then reset)
    cc: dict[int, float]  # latest value/127 of every CC number seen


@dataclass(frozen=True)
class CCTarget:
    """Where a MIDI CC goes: value 0..127 -> low..high linearly into mapping `mapping`'s `field` (layer: rounded)."""

    mapping: int
    field: str
    low: float
    high: float

    def value(self, cc: int) -> float | int:
        v = self.low + (self.high - self.low) * cc / 127
        return round(v) if self.field == "layer" else v


def check_prompt(text) -> str:
    """A prompt: a non-empty string of at most MAX_PROMPT_CHARS characters."""
    check_str("prompt", text, empty=False)
    if len(text) > MAX_PROMPT_CHARS:
        raise BendlabValueError(f"prompt of {len(text)} characters is too long; accepted: at most "
                                f"{MAX_PROMPT_CHARS} characters")
    return text


def warn_safely(controls: "Controls", message: str, source: str) -> None:
    """controls.warn from a MIDI or OSC thread, which must not die: if the log itself fails, a plain warning."""
    try:
        controls.warn(message, source)
    except Exception as e:
        warnings.warn(f"{message} (and the log failed: {type(e).__name__}: {e})", ControlWarning, stacklevel=2)


def short_value(v):
    """A message argument as logged: JSON-friendly and short (a huge string or a blob is summarised)."""
    if isinstance(v, str):
        return v if len(v) <= 200 else f"{v[:60]}... ({len(v)} characters)"
    if isinstance(v, (bytes, bytearray)):
        return f"<blob of {len(v)} bytes>"
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, (list, tuple)):  # a system exclusive message's data
        return list(v) if len(v) <= 32 else f"<{len(v)} bytes>"
    return repr(v)[:60]


class Controls:
    """The live session's controllable state: the prompt, each mapping's low, high, layer and held parameter, and
    what MIDI says (notes, CCs, clock). Every method is thread-safe.

    mappings: the session's mappings (a layer None is the paper's 40 of 50 at the same depth of n_layers);
    prompts: the prompts known at the start (the first is rendered); n_layers: the render's steps (layers
    0..n_layers); clock(): the session's audio clock in seconds; log(event): called with {"time": clock(),
    "kind": "prompt" | "set" | "midi" | "osc" | "warning", ...} for every change and every MIDI/OSC message, from
    any thread (None: no log); bpm: the tempo while no MIDI clock runs; cc_map: CC number -> CCTarget (`parse_cc`);
    latent_shape: (1, C, h, w) of the render's latent: a new low or high is checked against it (a kernel no larger
    than the latent), so the render loop never checks a bend.

    Notebook: notebooks/08_live.ipynb
    """

    def __init__(self, mappings: list[Mapping], prompts: list[str], n_layers: int, clock, log=None,
                 bpm: float = 120.0, cc_map: dict[int, CCTarget] | None = None, latent_shape: tuple | None = None):
        self.n_layers = check_int("n_layers", n_layers, 1, accepted="the render's steps, >= 1")
        self.latent_shape = latent_shape
        self.bpm = check_number("bpm", bpm, 0, 1000, low_open=True, accepted="a tempo 0 < bpm <= 1000")
        if not all(isinstance(m, Mapping) for m in mappings):
            raise BendlabValueError(f"mappings {mappings!r:.60}: accepted: a list of bendlab Mapping objects")
        self._clock, self._log = clock, log
        self._lock = threading.RLock()
        self._mappings = list(mappings)
        self._layers = []
        for j, m in enumerate(self._mappings):
            if self._is_vae(m):
                self._layers.append(self.n_layers)  # it acts at decode, after the last step
            else:
                self._layers.append(self._check_layer(j, m, fit_layer(LAYER, n_layers) if m.layer is None else
                                                      m.layer))
                self._mappings[j] = replace(m, layer=self._layers[-1])
        self._params: list[float | None] = [None] * len(self._mappings)
        self._prompts = [check_prompt(p) for p in check_strings("prompts", prompts)]
        self._prompt = 0
        self.cc_map = dict(cc_map or {})
        for cc, target in self.cc_map.items():
            check_int("CC number", cc, 0, 127)
            if not isinstance(target, CCTarget):
                raise BendlabValueError(f"cc_map[{cc}] {target!r:.60} is not a CCTarget; accepted: parse_cc(...)")
            check_int(f"mapping of CC {cc}", target.mapping, 0, len(self._mappings) - 1)
            check_choice("field", target.field, FIELDS)
        self._on_prompt = []
        self._held: dict[tuple[int, int], int] = {}  # (channel, note) -> velocity
        self._onset = 0.0
        self._cc: dict[int, float] = {}
        self._ticks = 0  # clock ticks counted since start (frozen while stopped)
        self._transport = True  # counting ticks (a clock without start messages counts too)
        self._tick_times: deque[float] = deque(maxlen=CLOCK_TICKS + 1)  # time.monotonic() of recent ticks
        self._tick_audio = 0.0  # clock() at the last tick

    # ------------------------------------------------------------------------------------------------ checks
    @staticmethod
    def _is_vae(m: Mapping) -> bool:
        return m.target is not None and m.target.startswith("vae:")

    def _check_layer(self, j: int, m: Mapping, layer) -> int:
        """A layer mapping j can bend at in a render of n_layers steps (Mapping's and Bend's own rules)."""
        if self._is_vae(m):
            raise BendlabValueError(f"mapping {j} bends {m.target}: it acts once, when the VAE decodes, and has no "
                                    "layer to set; accepted: low, high, param")
        layer = check_int(f"mapping {j} layer", layer, 0, self.n_layers, accepted=f"a layer of the {self.n_layers} "
                          "steps")
        self._check_bends(j, replace(m, layer=layer))
        return layer

    def _check_bends(self, j: int, m: Mapping) -> None:
        """Mapping j's bend at both ends of its range fits the render: its layer against the steps and, with the
        latent's shape given, a kernel or a row against the latent (`Bend.check`): what a frame renders is checked
        here, when it changes, and never again in the render loop."""
        ends = [[1.0] * 16] if m.op == "matrix" else [m.low, m.high]
        try:
            for v in ends:
                m.bend(v, m.layer).check(self.n_layers, self.latent_shape)
        except ValueError as e:  # Bend.check's one line, named for the mapping
            raise BendlabValueError(f"mapping {j}: {e}") from None

    # ------------------------------------------------------------------------------------------------ events
    def log_event(self, kind: str, **fields) -> None:
        """Log {"time": clock(), "kind": kind, **fields} (nothing without a log)."""
        if self._log is not None:
            self._log({"time": float(self._clock()), "kind": kind, **fields})

    def warn(self, message: str, source: str = "python") -> None:
        """A runtime fault, in one line: logged as a "warning" event and raised as a ControlWarning (not an error)."""
        self.log_event("warning", message=message, source=source)
        warnings.warn(message, ControlWarning, stacklevel=2)

    # ------------------------------------------------------------------------------------------------ changes
    def set(self, j: int, field: str, value, source: str = "python") -> None:
        """Set mapping j's low or high (a number the operator accepts, low != high, as `Mapping` checks), layer
        (an int 0..n_layers) or param (0..1 replacing its normalised audio feature; None: the audio again)."""
        with self._lock:
            j = check_int("mapping", j, 0, len(self._mappings) - 1, accepted=f"one of the {len(self._mappings)} "
                          "mappings")
            check_choice("field", field, FIELDS)
            m = self._mappings[j]
            if field in ("low", "high"):
                value = check_number(f"mapping {j} {field}", value)
                try:
                    new = replace(m, **{field: value})  # Mapping's checks (the operator's range)
                except ValueError as e:
                    raise BendlabValueError(f"mapping {j} {field} {value:g}: {e}") from None
                if not self._is_vae(new):
                    self._check_bends(j, new)  # against the render (a kernel larger than the latent)
                self._mappings[j] = new
            elif field == "layer":
                value = self._layers[j] = self._check_layer(j, m, value)
                self._mappings[j] = replace(m, layer=value)
            else:
                if value is not None:
                    value = check_number(f"mapping {j} param", value, 0, 1, accepted="0..1 (the normalised "
                                         "feature), or None (the audio drives it)")
                self._params[j] = value
            self.log_event("set", mapping=j, field=field, value=value, source=source)

    def set_prompt(self, text: str, source: str = "python") -> int:
        """Render `text` from now on: a new prompt is appended to the prompts, one known is reused; its index."""
        text = check_prompt(text)
        with self._lock:
            changed = text not in self._prompts or self._prompts[self._prompt] != text
            if text not in self._prompts:
                self._prompts.append(text)
            self._prompt = self._prompts.index(text)
            index, prompts = self._prompt, tuple(self._prompts)
            self.log_event("prompt", index=index, text=text, source=source)
            callbacks = list(self._on_prompt)
        if changed:
            for callback in callbacks:
                callback(index, prompts)
        return index

    def on_prompt(self, callback) -> None:
        """Call callback(index, prompts tuple) after each change of prompt (from any thread)."""
        with self._lock:
            self._on_prompt.append(callback)

    # ------------------------------------------------------------------------------------------------ MIDI
    def midi(self, msg, source: str = "midi", arrived: float | None = None) -> None:
        """Take one mido.Message: notes (velocity, onset), control_change (cc, then cc_map), clock, start, stop,
        continue, songpos; every message is logged, a value the cc_map's target refuses is a warning.
        arrived: time.monotonic() when the message arrived (default now), for the clock's tempo."""
        kind = msg.type
        late = 0.0 if arrived is None else max(0.0, time.monotonic() - arrived)
        with self._lock:
            self.log_event("midi", message={k: short_value(v) for k, v in msg.dict().items() if k != "time"},
                           source=source)
            if kind == "note_on" and msg.velocity > 0:
                self._held[(msg.channel, msg.note)] = msg.velocity
                self._onset = max(self._onset, msg.velocity / 127)
            elif kind in ("note_on", "note_off"):
                self._held.pop((msg.channel, msg.note), None)
            elif kind == "control_change":
                self._cc[msg.control] = msg.value / 127
                target = self.cc_map.get(msg.control)
                if target is not None:
                    try:
                        self.set(target.mapping, target.field, target.value(msg.value), source=source)
                    except BendlabValueError as e:
                        self.warn(f"CC {msg.control} value {msg.value}: {e}", source)
            elif kind == "clock":
                now = time.monotonic() - late
                if self._tick_times and now - self._tick_times[-1] > CLOCK_TIMEOUT:
                    self._tick_times.clear()  # a new run of the clock: old intervals say nothing
                self._tick_times.append(now)
                self._tick_audio = float(self._clock()) - late
                self._ticks += self._transport
            elif kind == "start":
                self._ticks, self._transport = 0, True
            elif kind == "stop":
                self._transport = False
            elif kind == "continue":
                self._transport = True
            elif kind == "songpos":  # in sixteenth notes: 6 ticks each
                self._ticks = msg.pos * TICKS_PER_BEAT // 4

    def _midi_clock(self) -> tuple[bool, float]:
        """(whether the MIDI clock runs: a tick within CLOCK_TIMEOUT, its tempo): 60 / the median time of 24
        ticks (one beat) among the recent ones (of single ticks while fewer than 25 came); the bpm given until
        MIN_TICKS came (two ticks delivered in one driver cycle would say any tempo)."""
        times = list(self._tick_times)
        if not times or time.monotonic() - times[-1] > CLOCK_TIMEOUT:
            return False, self.bpm
        if len(times) < MIN_TICKS:
            return True, self.bpm
        span = TICKS_PER_BEAT if len(times) > TICKS_PER_BEAT else 1
        beat = statistics.median(b - a for a, b in zip(times, times[span:])) * TICKS_PER_BEAT / span
        return True, 60.0 / beat if beat > 0 else self.bpm

    # ------------------------------------------------------------------------------------------------ reading
    def snapshot(self, t: float | None = None) -> Snapshot:
        """The state now, for a frame at audio time t (default clock()); resets the onset."""
        with self._lock:
            t = float(self._clock()) if t is None else float(t)
            running, tempo = self._midi_clock()
            if not running:
                beats = t * self.bpm / 60
            else:  # between ticks, advance at the tempo, by at most one tick either way
                step = (t - self._tick_audio) * tempo / 60 if self._transport else 0.0
                beats = self._ticks / TICKS_PER_BEAT + max(-1 / TICKS_PER_BEAT, min(1 / TICKS_PER_BEAT, step))
            onset, self._onset = self._onset, 0.0
            return Snapshot(
                prompt=self._prompt, prompts=tuple(self._prompts),
                mappings=tuple(MappingControl(m.low, m.high, layer, p)
                               for m, layer, p in zip(self._mappings, self._layers, self._params)),
                tempo=tempo, beats=beats, velocity=max(self._held.values(), default=0) / 127, onset=onset,
                cc=dict(self._cc))

    @property
    def prompts(self) -> tuple[str, ...]:
        """The prompts known now (a prompt set live is added to them)."""
        with self._lock:
            return tuple(self._prompts)

    @property
    def mappings(self) -> list[Mapping]:
        """The mappings as they are now: low, high and layer as set (a layer None resolved; a VAE one stays None)."""
        with self._lock:
            return list(self._mappings)


def parse_cc(text: str, n_mappings: int, n_layers: int) -> tuple[int, CCTarget]:
    """The command line's --cc CC=J.FIELD[:LO:HI] as (CC number, CCTarget); one line naming the text if bad.

    Notebook: notebooks/08_live.ipynb
    """
    def bad(why: str):
        return BendlabValueError(f"--cc {text!r}: {why}; accepted: {CC_FORMAT}")

    if not isinstance(text, str):
        raise bad("not a string")
    match = re.fullmatch(r"\s*(\d+)\s*=\s*(\d+)\s*\.\s*([a-z]+)\s*(?::([^:]*):([^:]*))?\s*", text)
    if not match:
        raise bad("not in the format")
    cc, j, field, lo, hi = match.groups()
    if int(cc) > 127:
        raise bad(f"CC {cc} is not in 0..127")
    if int(j) >= n_mappings:
        raise bad(f"mapping {j} is not in 0..{n_mappings - 1}" if n_mappings else "there are no mappings")
    if field not in FIELDS:
        raise bad(f"unknown field {field!r}")
    if lo is None:
        if field in ("low", "high"):
            raise bad(f"{field} needs a range LO:HI")
        lo, hi = (0.0, float(n_layers)) if field == "layer" else (0.0, 1.0)
    else:
        if field == "param":
            raise bad("param takes no range (a CC's 0..127 is the feature's 0..1)")
        try:
            lo, hi = float(lo), float(hi)
        except ValueError:
            raise bad(f"range {lo!r}:{hi!r} is not two numbers") from None
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
            raise bad(f"range {lo:g}:{hi:g} is not two different finite numbers")
        if field == "layer" and not (0 <= lo <= n_layers and 0 <= hi <= n_layers):
            raise bad(f"layer range {lo:g}:{hi:g} is outside 0..{n_layers}")
    return int(cc), CCTarget(int(j), field, lo, hi)


