"""The performer's live controls: MIDI (mido + python-rtmidi) and OSC (python-osc) change a live session's
prompt and each mapping's low/high/layer (or replace its audio feature), thread-safe; every change is logged.

`Controls` holds the state the live render loop reads once a frame (`Controls.snapshot`); MIDI and OSC write it
from their own threads. A bad value from a controller (a range the operator refuses, a layer past the last step,
an OSC message of the wrong type) is refused with the same one-line `BendlabValueError` a Python call gets, turned
into a `ControlWarning` and logged; the session plays on.

MIDI (`MidiInput`, `--midi-in PORT`, ports from `list_midi` on every compiled rtmidi API, ALSA and JACK):
    note_on / note_off   `Snapshot.velocity` (loudest note held, /127) and `Snapshot.onset` (loudest note started
                         since the previous snapshot): the live midi_velocity and midi_onset of `bendlab.midi`
    control_change       `Snapshot.cc[N]` = value/127 (the live midi_cc:N), then the `--cc` map (`parse_cc`):
                         CC=J.FIELD[:LO:HI] sets mapping J's low, high, layer or param, value 0..127 -> LO..HI
    clock (24 per beat)  `Snapshot.tempo` from the median span of 24 ticks among the last 96 (one beat; robust to
                         ticks delivered in bursts; the bpm given until MIN_TICKS came), `Snapshot.beats` =
                         ticks/24, advanced at the tempo between ticks by at most a tick; start resets the count
                         to 0, stop freezes it, continue resumes it, song position sets it. Without ticks for
                         CLOCK_TIMEOUT seconds the clock is not running: tempo = bpm given, beats = t*bpm/60
                         (so beats jump when a clock starts or stops: the automation records parameters, not beats).
    The MIDI driver's thread only queues each message; a worker thread applies them in order.
    A port that vanishes mid-session is a warning (once); MidiInput reconnects when the port comes back.

OSC (`OscServer`, `--osc HOST:PORT`, 127.0.0.1 unless told): the addresses of `OSC_ADDRESSES`. Messages are
handled one at a time, in the order they arrive (a fader's last value wins). Anything malformed (a datagram that
is not OSC, an unknown address, a wrong type or argument count, a string over MAX_PROMPT_CHARS) is a warning.

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import re
import statistics
import threading
import time
import warnings
from collections import deque
from dataclasses import dataclass, replace

from ..checks import (BendlabValueError, check_choice, check_host_port, check_int, check_number, check_str,
                      check_strings, is_number)
from ..mapping import Mapping
from ..paper import LAYER, fit_layer

MAX_PROMPT_CHARS = 1000  # a longer prompt (from Python, OSC) is refused
FIELDS = ("low", "high", "layer", "param")  # what a control sets on a mapping
TICKS_PER_BEAT = 24  # MIDI clock
CLOCK_TICKS = 96  # recent clock ticks kept for the tempo (4 beats)
CLOCK_TIMEOUT = 0.5  # seconds without a clock tick: the MIDI clock is not running
MIN_TICKS = 7  # clock ticks before their tempo is used (a quarter of a beat)
MIDI_POLL = 0.2  # seconds between checks that the MIDI input port still exists
CC_FORMAT = "CC=J.FIELD[:LO:HI], e.g. 1=0.high:0:6.2832, 7=0.layer, 74=0.param (CC 0..127, J a mapping, FIELD " \
    "low|high|layer|param; low and high need LO:HI, layer defaults to 0..steps, param is 0..1)"
OSC_ADDRESSES = {
    "/bendlab/prompt": "a string: the prompt rendered from now on (a new one is added to the session's prompts, "
                       f"one seen before is reused; at most {MAX_PROMPT_CHARS} characters)",
    "/bendlab/mapping/N/low": "a number: mapping N's low (its parameter at feature 0), valid for its operator",
    "/bendlab/mapping/N/high": "a number: mapping N's high (its parameter at feature 1), valid for its operator",
    "/bendlab/mapping/N/layer": "a number (rounded): the layer mapping N bends at, 0..steps",
    "/bendlab/mapping/N/param": "a number 0..1 replacing mapping N's normalised audio feature (held until the "
                                "next); a negative number or nil gives the mapping back to the audio",
}
_MAPPING_ADDRESS = re.compile(r"/bendlab/mapping/(-?\d+)/(low|high|layer|param)")


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


def _warn_safely(controls: "Controls", message: str, source: str) -> None:
    """controls.warn from a MIDI or OSC thread, which must not die: if the log itself fails, a plain warning."""
    try:
        controls.warn(message, source)
    except Exception as e:
        warnings.warn(f"{message} (and the log failed: {type(e).__name__}: {e})", ControlWarning, stacklevel=2)


def _short(v):
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
            self.log_event("midi", message={k: _short(v) for k, v in msg.dict().items() if k != "time"},
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


# ---------------------------------------------------------------------------------------------------- MIDI in
@contextlib.contextmanager
def _quiet_stderr():
    """Silence the C libraries' chatter (libjack's "Cannot connect to server socket" when no JACK runs)."""
    try:
        saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _apis() -> list[tuple[int, str]]:
    """The compiled rtmidi APIs that have ports (ALSA, JACK, ...) as (rtmidi API id, mido's backend API name)."""
    import rtmidi
    names = {getattr(rtmidi, n): n[4:] for n in dir(rtmidi) if n.startswith("API_")}
    return [(api, names[api]) for api in rtmidi.get_compiled_api() if api != rtmidi.API_RTMIDI_DUMMY]


def _input_ports(api: int) -> list[str]:
    import rtmidi
    with _quiet_stderr():
        try:
            probe = rtmidi.MidiIn(rtapi=api)
        except rtmidi.RtMidiError:  # that API's server or sequencer is not there
            return []
        try:
            return probe.get_ports()
        finally:
            probe.delete()


def _find_port(name: str) -> tuple[str, str]:
    """(mido API name, exact port name) for a MIDI input port given exactly or by a unique substring."""
    check_str("MIDI port", name, empty=False)
    ports = [(api_name, p) for api, api_name in _apis() for p in _input_ports(api)]
    exact = [(a, p) for a, p in ports if p == name]
    found = exact or [(a, p) for a, p in ports if name.lower() in p.lower()]
    if len({p for _, p in found}) == 1:
        return found[0]
    names = list(dict.fromkeys(p for _, p in ports))
    if not names:
        raise BendlabValueError(f"MIDI port {name!r}: no MIDI input ports exist (no device, or no JACK server or "
                                "ALSA sequencer running)")
    why = "matches several ports" if found else "is not a port"
    raise BendlabValueError(f"MIDI port {name!r} {why}; accepted: one of {', '.join(map(repr, names))}")


def list_midi() -> list[str]:
    """The MIDI input port names on every compiled rtmidi API (ALSA, JACK), for `bendlab live --list-midi`.

    Notebook: notebooks/08_live.ipynb
    """
    return list(dict.fromkeys(p for api, _ in _apis() for p in _input_ports(api)))


def check_midi_port(name: str) -> str:
    """The exact name of the MIDI input port `name` names (exactly, or by a unique substring); one line listing
    the ports otherwise."""
    return _find_port(name)[1]


class MidiInput:
    """A MIDI input port feeding `controls.midi` from mido's callback thread. A port that vanishes is a warning
    (once), and the port is opened again when it comes back; never a crash. close() when done.

    Notebook: notebooks/08_live.ipynb
    """

    def __init__(self, controls: Controls, port: str):
        import mido
        import rtmidi
        self.controls = controls
        self._api, self.name = _find_port(port)
        self._backend = mido.Backend(f"mido.backends.rtmidi/{self._api}")
        self._port = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        api = getattr(rtmidi, f"API_{self._api}")
        with _quiet_stderr():
            self._probe = rtmidi.MidiIn(rtapi=api)  # lists the ports while the session runs
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._open()
        self._worker = threading.Thread(target=self._work, name=f"bendlab MIDI {self.name}", daemon=True)
        self._worker.start()
        self._watch = threading.Thread(target=self._watch_loop, name=f"bendlab MIDI watch {self.name}", daemon=True)
        self._watch.start()

    def _open(self) -> None:
        # rtmidi calls back from the MIDI driver's thread (JACK's process cycle): a slow callback loses messages,
        # so it only stamps and queues each one; the worker thread hands them to the controls
        self._port = self._backend.open_input(self.name, callback=lambda msg: self._queue.put((time.monotonic(),
                                                                                               msg)))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._receive(*item)

    def _receive(self, arrived: float, msg) -> None:
        try:
            self.controls.midi(msg, arrived=arrived)
        except Exception as e:  # a fault in one message never stops the input
            _warn_safely(self.controls, f"MIDI message {msg!s:.60} from {self.name!r} failed ({type(e).__name__}: "
                         f"{' '.join(str(e).split())[:80]})", "midi")

    def _exists(self) -> bool:
        import rtmidi
        try:
            return self.name in self._probe.get_ports()
        except rtmidi.RtMidiError:
            return False

    def _watch_loop(self) -> None:
        while not self._stop.wait(MIDI_POLL):
            exists = self._exists()
            with self._lock:
                if self._stop.is_set():
                    return
                if self._port is not None and not exists:
                    self._port.close()
                    self._port = None
                    _warn_safely(self.controls, f"MIDI port {self.name!r} vanished; the session goes on without it "
                                 "(it is opened again if it comes back)", "midi")
                elif self._port is None and exists:
                    try:
                        self._open()
                    except OSError:
                        continue
                    try:
                        self.controls.log_event("midi", message={"type": "reconnected", "port": self.name},
                                                source="midi")
                    except Exception as e:
                        _warn_safely(self.controls, f"MIDI port {self.name!r} is back but the log failed "
                                     f"({type(e).__name__}: {e})", "midi")

    @property
    def connected(self) -> bool:
        return self._port is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Stop listening (a second close does nothing)."""
        if self._stop.is_set():
            return
        self._stop.set()
        with self._lock:
            if self._port is not None:
                self._port.close()
                self._port = None
        self._watch.join(timeout=2)
        self._queue.put(None)
        self._worker.join(timeout=2)
        self._probe.delete()


# ---------------------------------------------------------------------------------------------------- OSC in
def parse_osc(text: str) -> tuple[str, int]:
    """--osc HOST:PORT or PORT (host 127.0.0.1) as (host, port); port 0 asks for a free one. One line if bad.

    Notebook: notebooks/08_live.ipynb
    """
    return check_host_port("--osc", text)


def _server_class():
    from pythonosc import osc_packet
    from pythonosc.dispatcher import Dispatcher
    from pythonosc.osc_server import BlockingOSCUDPServer

    class Checked(Dispatcher):
        """python-osc's dispatcher, but a packet that does not parse is a warning rather than silence."""

        def __init__(self, controls: Controls):
            super().__init__(strict_timing=False)  # a bundle's time tag never makes the server sleep
            self.controls = controls

        def call_handlers_for_packet(self, data, client_address):
            try:
                osc_packet.OscPacket(data)
            except osc_packet.ParseError as e:
                _warn_safely(self.controls, f"OSC packet of {len(data)} bytes from {client_address[0]} does not "
                             f"parse ({' '.join(str(e).split())[:80]}); ignored", "osc")
                return []
            return super().call_handlers_for_packet(data, client_address)

    class Server(BlockingOSCUDPServer):
        """One thread, messages in arrival order; a datagram of any UDP size is read whole (not cut at 8 kB)."""
        max_packet_size = 65535

        def verify_request(self, request, client_address):
            ok = super().verify_request(request, client_address)
            if not ok:
                _warn_safely(self.dispatcher.controls, f"UDP datagram of {len(request[0])} bytes from "
                             f"{client_address[0]} is not an OSC message or bundle; ignored", "osc")
            return ok

        def handle_error(self, request, client_address):  # a handler's fault: a warning, the server serves on
            import sys
            e = sys.exc_info()[1]
            _warn_safely(self.dispatcher.controls, f"OSC message from {client_address[0]} failed "
                         f"({type(e).__name__}: {' '.join(str(e).split())[:80]})", "osc")

    return Checked, Server


class OscServer:
    """An OSC server on UDP host:port (port 0: a free one; `address` is the one bound) in a daemon thread,
    applying the messages of `OSC_ADDRESSES` to `controls`; malformed messages are warnings. close() when done.

    Notebook: notebooks/08_live.ipynb
    """

    def __init__(self, controls: Controls, host: str = "127.0.0.1", port: int = 0):
        Checked, Server = _server_class()
        self.controls = controls
        n = len(controls.mappings)
        dispatcher = Checked(controls)
        dispatcher.map("/bendlab/prompt", self._prompt)
        for j in range(n):
            for field in FIELDS:
                dispatcher.map(f"/bendlab/mapping/{j}/{field}", self._mapping, j, field)
        dispatcher.set_default_handler(self._unknown)
        try:
            self._server = Server((host, check_int("OSC port", port, 0, 65535)), dispatcher)
        except OSError as e:
            raise BendlabValueError(f"OSC address {host}:{port} cannot be served ({e.strerror or e}); accepted: a "
                                    "free UDP port on a local address") from None
        self.address: tuple[str, int] = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"bendlab OSC {self.address[0]}:{self.address[1]}", daemon=True)
        self._thread.start()

    def _received(self, address: str, args) -> None:
        self.controls.log_event("osc", address=address, args=[_short(a) for a in args], source="osc")

    def _refuse(self, address: str, why: str) -> None:
        self.controls.warn(f"OSC {address}: {why}; ignored", "osc")

    def _prompt(self, address: str, *args) -> None:
        self._received(address, args)
        if len(args) != 1 or not isinstance(args[0], str):
            return self._refuse(address, f"arguments {[_short(a) for a in args]!r:.80}; accepted: "
                                         f"{OSC_ADDRESSES['/bendlab/prompt']}")
        try:
            self.controls.set_prompt(args[0], source="osc")
        except BendlabValueError as e:
            self._refuse(address, str(e))

    def _mapping(self, address: str, fixed: list, *args) -> None:
        self._received(address, args)
        self._apply(address, fixed[0], fixed[1], args)

    def _apply(self, address: str, j: int, field: str, args) -> None:
        accepted = OSC_ADDRESSES[f"/bendlab/mapping/N/{field}"]
        if len(args) != 1 or not (is_number(args[0]) or (field == "param" and args[0] is None)):
            return self._refuse(address, f"arguments {[_short(a) for a in args]!r:.80}; accepted: {accepted}")
        value = args[0]
        if field == "layer" and math.isfinite(value):
            value = round(value)
        elif field == "param" and (value is None or value < 0):
            value = None
        try:
            self.controls.set(j, field, value, source="osc")
        except BendlabValueError as e:
            self._refuse(address, str(e))

    def _unknown(self, address: str, *args) -> None:
        self._received(address, args)
        match = _MAPPING_ADDRESS.fullmatch(address)
        if match:  # a mapping that does not exist: set() says which exist
            return self._apply(address, int(match[1]), match[2], args)
        self._refuse(address, f"unknown address; accepted: {', '.join(OSC_ADDRESSES)}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        """Stop serving and free the port (a second close does nothing)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        thread.join(timeout=2)
