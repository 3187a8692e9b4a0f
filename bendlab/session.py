"""A live session folder: what `bendlab live --record DIR` writes while it plays, and what `bendlab video --session
DIR` reads to re-render the performance offline at full quality (`video.spec.session_spec`).

    DIR/
      session.json     {"version": 1, "model", "steps", "guidance", "seed", "fps", "sr", "prompts": [...],
                        "mappings": [each Mapping's fields], "bpm", "started": ISO time, ...any extra keys};
                        written atomically at the start, rewritten atomically when a prompt is added
      audio.wav        every sample heard: mono, 16-bit PCM at sr (Python's `wave`: the header is patched after
                        every block, so the file is a valid WAV up to the last block written)
      automation.csv   time,prompt,m0.param,m0.low,m0.high,m0.layer,m1.param,...: one row per frame shown live;
                        time: the start of the 1/fps window of audio the frame analysed, in seconds on the
                        audio clock (samples delivered / sr when it was read, minus 1/fps), so frame k of an
                        offline render at k/fps analyses the same window; the prompt index, then each mapping's
                        parameter value, range and layer
      events.jsonl     one JSON object a line, {"time": s, "kind": "...", ...}: prompt changes, MIDI and OSC
                        messages, warnings, start / stop / device lost

Every file is flushed after each block, row or line, and session.json is written last at the start: a folder
holding session.json holds the other three, and a kill at any moment (kill -9 included) leaves a folder that
`read_session` reads up to that moment (a partial last CSV or JSON line is dropped; the WAV header counts the
blocks written before the last one started). A session is never overwritten: `SessionWriter` refuses a folder
that holds a take (audio.wav with samples, `holds_take`); a folder left by a start that failed before any audio
is replaced.

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import json
import math
import threading
import wave
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .checks import BendlabValueError, MissingFileError, check_int, check_strings, is_number
from .files import write_text_atomic

VERSION = 1
META, AUDIO, AUTOMATION, EVENTS = "session.json", "audio.wav", "automation.csv", "events.jsonl"
FILES = (META, AUDIO, AUTOMATION, EVENTS)
COLUMNS = ("param", "low", "high", "layer")  # per mapping, after time and prompt


def header(n_mappings: int) -> list[str]:
    """automation.csv's columns for n mappings."""
    return ["time", "prompt"] + [f"m{j}.{c}" for j in range(n_mappings) for c in COLUMNS]


def holds_take(folder) -> bool:
    """Whether a session folder holds a take: audio.wav with at least one sample. A folder whose start failed or
    was stopped before any audio (session.json and empty files) holds none: the next take may use it."""
    wav = Path(folder) / AUDIO
    try:
        with wave.open(str(wav), "rb") as w:
            return w.getnframes() > 0
    except (OSError, EOFError, wave.Error):
        return wav.exists() and wav.stat().st_size > 44  # a header only, or none, is no take


def _meta_json(meta: dict) -> str:
    try:
        return json.dumps(meta, indent=1)
    except (TypeError, ValueError) as e:
        raise BendlabValueError(f"session meta is not JSON ({e}); accepted: numbers, strings, lists and dicts") \
            from None


class SessionWriter:
    """Writes a session folder as a performance happens (see the module docstring). audio() and event() may be
    called from any thread (an audio callback, a MIDI or OSC thread); row() and prompts() from the render loop.

    meta: at least sr, fps, steps, prompts and mappings (Mapping objects or dicts of their fields); every other
    key (model, guidance, seed, bpm, walk, ...) is recorded as given. "version" and "started" are added.

    Notebook: notebooks/08_live.ipynb
    """

    def __init__(self, folder, meta: dict):
        from .audio.signal import check_fps, check_sr
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise BendlabValueError(f"session folder {str(self.folder)!r} is a file; accepted: a new or empty folder")
        present = [name for name in FILES if (self.folder / name).exists()]
        if present and holds_take(self.folder):
            raise BendlabValueError(f"session folder {str(self.folder)!r} already holds {present[0]}; accepted: a new "
                                    "or empty folder (a session is never overwritten)")
        for name in present:  # an empty take (a start that failed, no audio): replaced, never a reason to refuse
            (self.folder / name).unlink()
        if not isinstance(meta, dict):
            raise BendlabValueError(f"session meta {meta!r:.60} is not a dict")
        mappings = meta.get("mappings")
        if not isinstance(mappings, (list, tuple)) or not mappings:
            raise BendlabValueError(f"session mappings {mappings!r:.60}: accepted: a list of one or more Mapping "
                                    "or dicts of its fields")
        self.meta = {"version": VERSION, **meta, "sr": check_sr(meta.get("sr")), "fps": check_fps(meta.get("fps")),
                     "steps": check_int("session steps", meta.get("steps"), 1),
                     "prompts": check_strings("session prompts", meta.get("prompts")),
                     "mappings": [asdict(m) if is_dataclass(m) else dict(m) for m in mappings],
                     "started": datetime.now(timezone.utc).isoformat(timespec="milliseconds")}
        text = _meta_json(self.meta)
        self.sr, self.n_mappings = self.meta["sr"], len(mappings)
        self._lock = threading.Lock()  # the audio and the rows
        self._events_lock = threading.Lock()
        self._samples, self._last_time, self._closed = 0, -math.inf, False
        self.folder.mkdir(parents=True, exist_ok=True)
        self._wav_file = open(self.folder / AUDIO, "wb")
        self._wav = wave.open(self._wav_file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(self.sr)
        self._wav.writeframes(b"")  # the header now: an empty session is a valid (empty) WAV
        self._wav_file.flush()
        self._csv = open(self.folder / AUTOMATION, "w", encoding="utf-8", newline="")
        self._csv.write(",".join(header(self.n_mappings)) + "\n")
        self._csv.flush()
        self._events = open(self.folder / EVENTS, "w", encoding="utf-8")
        write_text_atomic(self.folder / META, text)  # last: session.json present => the other files are

    @property
    def seconds(self) -> float:
        """The audio clock: seconds of audio written so far."""
        return self._samples / self.sr

    def audio(self, block: np.ndarray) -> None:
        """Append a block of mono samples (float, -1..1; clipped; NaN written as 0)."""
        x = np.asarray(block, dtype=np.float32)
        if x.ndim == 2 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 1:
            raise BendlabValueError(f"audio block of shape {x.shape}; accepted: mono samples, (n,) or (n, 1)")
        pcm = np.round(np.clip(np.nan_to_num(x), -1.0, 1.0) * 32767).astype("<i2")
        with self._lock:
            if self._closed:
                return
            self._wav.writeframes(pcm.tobytes())  # patches the header's sizes after the data
            self._wav_file.flush()
            self._samples += len(pcm)

    def row(self, time: float, prompt: int, values) -> None:
        """One frame shown: its time on the audio clock, its prompt index, (param, low, high, layer) per mapping."""
        values = list(values)
        if len(values) != self.n_mappings or not all(len(v) == 4 for v in values):
            raise BendlabValueError(f"{len(values)} automation values for {self.n_mappings} mappings; accepted: one "
                                    "(param, low, high, layer) per mapping")
        if not is_number(time) or not math.isfinite(time) or time < self._last_time:
            raise BendlabValueError(f"automation time {time!r} is not finite or goes back (last {self._last_time:g} s);"
                                    " accepted: the audio clock, which never goes back")
        cells = [repr(float(time)), str(int(prompt))]
        for param, low, high, layer in values:
            cells += [repr(float(param)), repr(float(low)), repr(float(high)), str(int(layer))]
        _check_row(self.folder / AUTOMATION, "(being written)", [float(c) for c in cells], self.meta)
        with self._lock:
            if self._closed:
                return
            self._last_time = time
            self._csv.write(",".join(cells) + "\n")
            self._csv.flush()

    def event(self, event: dict) -> None:
        """One event, {"time": s, "kind": "...", ...}, as one JSON line (values JSON cannot hold written as text)."""
        if not isinstance(event, dict) or not is_number(event.get("time")) or not isinstance(event.get("kind"), str):
            raise BendlabValueError(f"event {event!r:.60}; accepted: a dict with a number 'time' and a string 'kind'")
        line = json.dumps(event, default=str)
        with self._events_lock:
            if self._closed:
                return
            self._events.write(line + "\n")
            self._events.flush()

    def prompts(self, prompts: list[str]) -> None:
        """The prompt list grew (recorded prompt indices keep their meaning): session.json rewritten atomically."""
        prompts = check_strings("session prompts", prompts)
        old = self.meta["prompts"]
        if prompts[:len(old)] != old:
            raise BendlabValueError(f"session prompts {prompts!r:.60} do not extend {old!r:.60}; accepted: the "
                                    "recorded prompts with new ones appended")
        self.meta["prompts"] = prompts
        write_text_atomic(self.folder / META, _meta_json(self.meta))

    def close(self) -> None:
        """Close every file (the WAV's header is final); a second call does nothing."""
        with self._lock, self._events_lock:
            if self._closed:
                return
            self._closed = True
            self._wav.close()
            self._wav_file.close()
            self._csv.close()
            self._events.close()

    def __enter__(self) -> "SessionWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Session:
    """A recorded session as read back: session.json (`meta`), the automation rows (times on the audio clock;
    `params`, `lows`, `highs` and `layers` are (n_mappings, rows)), the events and the audio file."""

    folder: Path
    meta: dict
    times: np.ndarray
    prompt: np.ndarray
    params: np.ndarray
    lows: np.ndarray
    highs: np.ndarray
    layers: np.ndarray
    events: list[dict]
    audio: Path
    duration: float

    @property
    def rows(self) -> int:
        return len(self.times)

    def at(self, t) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The automation at the times `t` (seconds): each mapping's parameter linearly interpolated between the
        rows (before the first row: its value; after the last: the last's), and the prompt index and each
        mapping's layer in effect (the last row at or before t; before the first row: the first's). Rows of the
        same time: the last one counts. Returns params (n_mappings, len(t)), prompt (len(t),), layers
        (n_mappings, len(t))."""
        if not self.rows:
            raise BendlabValueError(f"session {str(self.folder)!r} holds no automation rows (no frame was shown); "
                                    "accepted: a session that showed at least one frame")
        t = np.asarray(t, dtype=np.float64)
        keep = np.r_[np.diff(self.times) > 0, True]  # the last row of each time
        times = self.times[keep]
        params = np.stack([np.interp(t, times, p) for p in self.params[:, keep]])
        k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, None)
        return params, self.prompt[keep][k], self.layers[:, keep][:, k]


def fit_layers(layers, steps_from: int, steps_to: int):
    """Layers recorded at `steps_from` steps carried to a render of `steps_to` steps at the same relative depth
    (rounded as `paper.fit_layer` rounds: half to even): a number, or an array of them."""
    if steps_to == steps_from:
        return layers
    out = np.rint(np.asarray(layers) * steps_to / steps_from).astype(int)
    return int(out) if out.ndim == 0 else out


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the complete lines of a file written line by line (a partial last line, the trace
    of a kill mid-write, is dropped)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")[:-1]  # the piece after the last newline is partial (or empty)
    return [(n, s) for n, s in enumerate(lines, 1) if s.strip()]


def _need(folder: Path, name: str) -> Path:
    p = folder / name
    if not p.is_file():
        raise MissingFileError(f"session folder {str(folder)!r} has no {name}; accepted: a folder written by "
                               "`bendlab live --record` (session.json, audio.wav, automation.csv, events.jsonl)")
    return p


def read_meta(folder) -> dict:
    """session.json of a session folder, checked (one line naming what is missing or wrong)."""
    if not isinstance(folder, (str, Path)) or not str(folder):
        raise BendlabValueError(f"session {folder!r:.60} is not a path to a session folder")
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(f"session folder {str(folder)!r} does not exist or is not a folder")
    p = _need(folder, META)
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise BendlabValueError(f"{str(p)!r} is not JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("version") != VERSION:
        raise BendlabValueError(f"{str(p)!r} is not a version {VERSION} session (version "
                                f"{meta.get('version') if isinstance(meta, dict) else None!r})")
    for key in ("sr", "fps", "steps", "prompts", "mappings"):
        if key not in meta:
            raise BendlabValueError(f"{str(p)!r} has no {key!r}")
    from .audio.signal import check_fps, check_sr
    try:  # the same rules the writer applies (`SessionWriter`)
        check_sr(meta["sr"])
        check_fps(meta["fps"])
        check_int("steps", meta["steps"], 1, 1000)
        check_strings("prompts", meta["prompts"])
    except BendlabValueError as e:
        raise BendlabValueError(f"{str(p)!r}: {e}") from None
    return meta


def _check_row(csv: Path, n: int, cells: list[float], meta: dict) -> None:
    """One automation row against the session: finite numbers, a prompt index of its prompts, whole layers in
    0..steps (what `SessionWriter.row` writes)."""
    names = header(len(meta["mappings"]))
    for name, v in zip(names, cells):
        if not math.isfinite(v):
            raise BendlabValueError(f"{str(csv)!r} line {n}: {name} {v} is not a finite number; accepted: finite "
                                    "values")
    prompt = cells[1]
    if prompt != int(prompt) or not 0 <= prompt < len(meta["prompts"]):
        raise BendlabValueError(f"{str(csv)!r} line {n}: prompt {prompt:g} is not an index of the session's "
                                f"{len(meta['prompts'])} prompt(s); accepted: 0..{len(meta['prompts']) - 1}")
    for name, v in zip(names, cells):
        if name.endswith(".layer") and (v != int(v) or not 0 <= v <= meta["steps"]):
            raise BendlabValueError(f"{str(csv)!r} line {n}: {name} {v:g} is not a layer of the session's "
                                    f"{meta['steps']} steps; accepted: whole numbers 0..{meta['steps']}")


def read_session(folder) -> Session:
    """Read a session folder, as a kill at any moment left it (see the module docstring); a folder that is not a
    session is refused in one line naming what is missing.

    Notebook: notebooks/08_live.ipynb
    """
    meta = read_meta(folder)
    folder = Path(folder)
    wav = _need(folder, AUDIO)
    try:
        with wave.open(str(wav), "rb") as w:
            if (w.getnchannels(), w.getsampwidth()) != (1, 2):
                raise BendlabValueError(f"{str(wav)!r} is not mono 16-bit PCM")
            duration = w.getnframes() / w.getframerate()
            if w.getframerate() != meta["sr"]:
                raise BendlabValueError(f"{str(wav)!r} is at {w.getframerate()} Hz but session.json says sr "
                                        f"{meta['sr']}; accepted: the audio the session recorded, at its rate")
    except (wave.Error, EOFError) as e:
        raise BendlabValueError(f"{str(wav)!r} is not a readable WAV ({e or type(e).__name__})") from None
    csv = _need(folder, AUTOMATION)
    lines = _lines(csv)
    M = len(meta["mappings"])
    if not lines or lines[0][1].split(",") != header(M):
        raise BendlabValueError(f"{str(csv)!r} does not start with the header of {M} mapping(s): "
                                f"{','.join(header(M))[:60]}")
    rows = []
    for n, line in lines[1:]:
        try:
            cells = [float(c) for c in line.split(",")]
        except ValueError:
            cells = []
        if len(cells) != 2 + 4 * M:
            raise BendlabValueError(f"{str(csv)!r} line {n} is not {2 + 4 * M} numbers: {line[:40]!r}")
        _check_row(csv, n, cells, meta)
        rows.append(cells)
    a = np.array(rows, dtype=np.float64).reshape(len(rows), 2 + 4 * M)
    if (np.diff(a[:, 0]) < 0).any():
        n = int(np.argmax(np.diff(a[:, 0]) < 0)) + 3
        raise BendlabValueError(f"{str(csv)!r} line {n}: the time goes back; accepted: times on the audio clock")
    per = a[:, 2:].T.reshape(M, 4, len(rows))
    events = []
    for n, line in _lines(_need(folder, EVENTS)):
        try:
            events.append(json.loads(line))
        except ValueError:
            raise BendlabValueError(f"{str(folder / EVENTS)!r} line {n} is not JSON: {line[:40]!r}") from None
    return Session(folder, meta, a[:, 0], a[:, 1].astype(int), per[:, 0], per[:, 1], per[:, 2],
                   per[:, 3].astype(int), events, wav, duration)
