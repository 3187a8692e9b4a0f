"""Live mode: bend the model with the music as it plays, a frame at a time, always from the newest audio.

A live frame's way, top to bottom (the offline pieces, reused):

    audio in (`live.audio_in`: a microphone, or a file played to the output; one audio clock)
    -> features of the newest 1/fps window (`live.causal.Analyser`: the offline definitions)
    -> mappings, causally (`live.causal.LiveMapping`: smoothing, running range, `audio.shape`), with the performer's
       current ranges and layers (`live.Controls`: MIDI, OSC, the notebook's sliders)
    -> one render from the prompt's shared prefix (`bend.render.render_batch` from the latent at the earliest bent
       layer, computed once per prompt and layer: a frame costs only the steps after the bend)
    -> shown (`on_frame`: the notebook's image, the MJPEG stream) and, with a session folder, recorded
       (`session.SessionWriter`: every sample heard, one automation row per shown frame, the events).

The loop always renders the newest state: when rendering is slower than the frame rate, frames are dropped,
never queued, so the latency stays one render (plus the device's own). It never renders faster than `fps`.
A prompt change computes the new prefix on a second pipeline object sharing the weights, while the loop goes on
rendering the old prompt (latent targets; with module, VAE or text targets, whose hooks sit on the shared
modules, the loop computes it itself).

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import audio, models
from .controls import Controls, check_prompt, parse_cc
from .midi_in import MidiInput, check_midi_port
from .osc import OscServer, parse_osc
from .causal import DEFAULT_HALFLIFE, Analyser, LiveMapping, RunningRange, check_live_feature
from ..checks import BendlabValueError, check_host_port, check_number, check_strings
from ..bend.fit import check_bends, check_settings
from ..mapping import Mapping
from ..paper import DEFAULT_PROMPT, LAYER, SEED, fit_layer

if TYPE_CHECKING:  # annotations only: LiveSpec is read without torch (the command line's help)
    import torch

LIVE_STEPS = 10  # default steps live (fewer when the model's usual count is smaller: LCM 4, Turbo 1)
STATUS_EVERY = 1.0  # seconds between status lines
CLEAN_STOPS = ("stopped", "seconds", "end of file")  # the reasons `Live.run` returns for a session that ended well


@dataclass
class LiveSpec:
    """What a live session renders: prompts (the first shown first; MIDI/OSC may add more), mappings, model and
    settings. fps: the target frame rate (never exceeded) and the analysis window (1/fps s of audio);
    halflife, soundcheck: the causal normalisation (`live.causal.RunningRange`); bpm: the tempo for beat features
    when no MIDI clock runs."""

    prompts: list[str] = field(default_factory=lambda: [DEFAULT_PROMPT])
    mappings: list[Mapping] = field(default_factory=lambda: [Mapping()])
    model: str = models.DEFAULT_MODEL
    steps: int | None = None  # None: 10, or the model's usual count when smaller
    guidance: float | None = None  # None: the model's usual guidance
    seed: int = SEED
    fps: float = 20.0
    sr: int = audio.DEFAULT_SR
    halflife: float = DEFAULT_HALFLIFE
    soundcheck: float = 0.0
    bpm: float = 120.0

    def __post_init__(self):
        self.prompts = [check_prompt(p) for p in check_strings("prompts", self.prompts)]  # before the model loads
        if not isinstance(self.mappings, (list, tuple)) or not self.mappings:
            raise BendlabValueError(f"mappings {self.mappings!r:.60}: accepted: a list of one or more Mapping")
        self.mappings = [m if isinstance(m, Mapping) else Mapping(**m) for m in self.mappings]
        for m in self.mappings:
            check_live_feature(m.feature)
            if m.dims is not None:
                raise BendlabValueError(f"feature {m.feature!r} gives several values per frame; accepted live: "
                                        "one-number features")
        self.fps = audio.check_fps(self.fps)
        self.sr = audio.check_sr(self.sr)
        check_settings(LIVE_STEPS if self.steps is None else self.steps,
                       0.0 if self.guidance is None else self.guidance, self.seed)
        RunningRange(self.fps, self.halflife, self.soundcheck)  # checks both
        check_number("bpm", self.bpm, 1, 999, accepted="beats per minute 1..999")


def check_record_folder(folder: Path) -> None:
    """One line, before the model loads, unless `folder` can take a new session: not a file, no take in it
    (`session.holds_take`), and the nearest existing folder on its path writable."""
    import os

    from ..session import holds_take
    if folder.exists() and not folder.is_dir():
        raise BendlabValueError(f"session folder {str(folder)!r} is a file; accepted: a new or empty folder")
    if folder.is_dir() and holds_take(folder):
        raise BendlabValueError(f"session folder {str(folder)!r} already holds a session; accepted: a new or empty "
                                "folder")
    existing = next(p for p in (folder, *folder.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BendlabValueError(f"session folder {str(folder)!r} cannot be written ({str(existing)!r} is not "
                                "writable); accepted: a folder you can write to")


def check_seconds(seconds) -> None:
    """How long a session runs: None (until stopped) or seconds > 0."""
    if seconds is not None:
        check_number("seconds", seconds, 0, low_open=True, accepted="seconds > 0 (or none: until stopped)")


def _stop_on_sigint(stop: threading.Event):
    """In the main thread: Ctrl-C (SIGINT) sets `stop`, so the loop ends after the frame in flight with the reason
    "stopped", rather than a KeyboardInterrupt raised wherever the main thread happens to be (a library that catches
    BaseException there would swallow it and the session would run on). Returns the handler it replaced (None off
    the main thread, where signals cannot be handled)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGINT, lambda signum, frame: stop.set())


def stop_words(reason: str, seconds: float | None = None) -> str:
    """Why a session stopped (`Live.run`'s reason), in words for its last line; `seconds`: the length asked."""
    words = {"stopped": "you stopped it (Ctrl-C)", "seconds": f"{seconds or 0:g} s elapsed",
             "end of file": "the track ended"}
    return words.get(reason, reason)


def resolve(spec: LiveSpec, model: models.Model | None = None) -> LiveSpec:
    """Every None decided by the model's configs (no weights): steps, guidance, each mapping's layer (the
    paper's 40 of 50 at the same depth: 8 of 10)."""
    usual_steps, guidance = (model or models.Model.of(spec.model)).usual(None, spec.guidance)
    steps = spec.steps if spec.steps is not None else min(LIVE_STEPS, usual_steps)
    mappings = [m if m.layer is not None else replace(m, layer=fit_layer(LAYER, steps)) for m in spec.mappings]
    for m in mappings:
        if m.layer > steps:
            raise BendlabValueError(f"layer {m.layer} is outside 0..{steps} (the live frames run {steps} steps)")
    return replace(spec, steps=steps, guidance=guidance, mappings=mappings)


@dataclass(frozen=True)
class LiveFrame:
    """What `on_frame` receives beside the image: the frame's number, its audio window's start (s, audio
    clock), the prompt index, each mapping's parameter, and the loop's measured rates."""

    index: int
    time: float
    prompt: int
    params: tuple[float, ...]
    latency: float  # seconds from the window's last sample arriving to this frame being ready
    fps: float  # frames shown per second over the last two seconds


@dataclass
class LiveStats:
    frames: int = 0
    dropped: int = 0
    elapsed: float = 0.0
    latencies: deque = field(default_factory=lambda: deque(maxlen=2000))
    shown: deque = field(default_factory=lambda: deque(maxlen=400))  # wall times of shown frames

    @property
    def fps(self) -> float:
        if len(self.shown) < 2:
            return 0.0
        recent = [t for t in self.shown if t >= self.shown[-1] - 2.0]
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-9) if len(recent) > 1 else 0.0

    def latency(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) if self.latencies else math.nan

    def line(self, target: float) -> str:
        return (f"live {self.elapsed:5.1f} s: {self.fps:5.1f} fps (target {target:g}), latency p50 "
                f"{self.latency(50) * 1000:.0f} ms p95 {self.latency(95) * 1000:.0f} ms, {self.frames} shown, "
                f"{self.dropped} dropped")


class Live:
    """A live session: `run(seconds)` blocks until stopped (`stop()`, Ctrl-C, `seconds`, the end of a played
    file, or the input lost) and returns why; `start()` runs it in a thread (the notebook).

    audio_in: an `audio_in.Microphone` or `audio_in.Player`; pipe: a loaded pipeline (else spec.model is loaded
    on `device` once every input has been checked); record: a new session folder (`bendlab.session`); midi_in:
    a MIDI input port (name or part of it); cc: `--cc` texts ("1=0.high:0:6.2832"); osc: "HOST:PORT" or "PORT"
    for the OSC server (`live.osc.OSC_ADDRESSES`); serve: "HOST:PORT" for the MJPEG stream (`stream`);
    on_frame(image, LiveFrame): called with every shown frame; status: print a status line every second.
    """

    def __init__(self, spec: LiveSpec, audio_in, *, pipe=None, device: str | None = None, record=None,
                 midi_in: str | None = None, cc=(), osc: str | None = None, serve: str | None = None,
                 on_frame=None, status: bool = True):
        if not isinstance(spec, LiveSpec):
            raise BendlabValueError(f"spec {spec!r:.60} is not a LiveSpec")
        self.model = models.Model.of(spec.model, pipe)
        self.spec = resolve(spec, self.model)
        shapes = self.model.shapes
        if shapes is not None:
            self.check_bends(shapes)
        from .audio_in import AudioIn
        if not isinstance(audio_in, AudioIn):
            raise BendlabValueError(f"audio input {audio_in!r:.60} is not an audio input; accepted: "
                                    "bendlab.live.Microphone(...) or bendlab.live.Player(...)")
        if record is not None and (not isinstance(record, (str, Path)) or not str(record).strip()):
            raise BendlabValueError(f"record folder {record!r} is not a folder path; accepted: a new or empty "
                                    "folder, e.g. sessions/take1 (or no recording)")
        window = 2 * math.ceil(self.spec.sr / self.spec.fps)  # a frame analyses its window and the one before (flux)
        if window > len(audio_in.ring):
            raise BendlabValueError(f"fps {self.spec.fps:g} analyses {window / self.spec.sr:g} s of audio a frame, "
                                    f"more than the input keeps ({audio_in.keep:g} s); accepted: fps >= "
                                    f"{2 / audio_in.keep:g}")
        if audio_in.sr != self.spec.sr:
            raise BendlabValueError(f"audio input at {audio_in.sr} Hz for a session at {self.spec.sr} Hz; accepted: "
                                    "the same rate")
        self.audio_in = audio_in
        self.pipe, self.device = pipe, (None if pipe is not None else models.check_device(device))
        self.record = None if record is None else Path(record)
        if self.record is not None:
            check_record_folder(self.record)
        n_layers = self.spec.steps
        self.cc = dict(parse_cc(c, len(self.spec.mappings), n_layers) for c in cc)
        self.midi_port = None if midi_in is None else check_midi_port(midi_in)
        self.osc_address = None if osc is None else parse_osc(osc)
        self.serve_address = None if serve is None else check_host_port("--serve", serve, 8090)
        self.on_frame, self.status = on_frame, status
        self.stats = LiveStats()
        self.controls: Controls | None = None
        self.server = None
        self.osc = self.midi = self.writer = self._bg = None
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._emb: dict[int, object] = {}
        self._prefix: dict[tuple[int, int], torch.Tensor] = {}
        self._pending: tuple[tuple[int, int], Future] | None = None
        self._last_key: tuple[int, int] | None = None

    # ------------------------------------------------------------------ checks and set-up
    def check_bends(self, shapes) -> None:
        """Both ends of every mapping's range, at its layer, against the model's shapes."""
        from ..bend.render import latent_shape
        shape = latent_shape(shapes, 1)
        for m in self.spec.mappings:
            check_bends(shapes, [m.bend(m.low), m.bend(m.high)], self.spec.steps, shape)

    def _meta(self) -> dict:
        s = self.spec
        return {"model": s.model, "steps": s.steps, "guidance": s.guidance, "seed": s.seed, "fps": s.fps,
                "sr": s.sr, "prompts": list(s.prompts), "mappings": [asdict(m) for m in s.mappings], "bpm": s.bpm,
                "halflife": s.halflife, "soundcheck": s.soundcheck,
                "input": type(self.audio_in).__name__ + (f" {self.audio_in.path}" if hasattr(self.audio_in, "path")
                                                         else "")}

    # ------------------------------------------------------------------ prefixes
    def _start_layer(self, layers) -> int:
        bent = [L for m, L in zip(self.spec.mappings, layers) if not (m.target or "").startswith("vae:")]
        if models.is_stochastic(self.pipe.scheduler) or not bent:
            return 0
        return min(min(bent), self.spec.steps - 1)

    def _compute(self, pipe, key: tuple[int, int], prompts: tuple[str, ...]):
        from ..bend.render import encode_prompts, initial_noise, shared_prefix
        p, L = key
        if p not in self._emb:
            self._emb[p] = encode_prompts(pipe, [prompts[p]])
        noise = initial_noise(pipe, self.spec.seed)
        if L == 0:
            return noise
        return shared_prefix(pipe, self._emb[p], noise, [L], steps=self.spec.steps, guidance=self.spec.guidance)[L]

    def _prefix_for(self, key: tuple[int, int], prompts) -> tuple[int, int]:
        """The key of a prefix to render from now: the one wanted if ready; else, while a second pipeline
        computes it, the previous one when it starts early enough (the old prompt stays on screen)."""
        if key in self._prefix:
            return key
        if self._pending is not None and self._pending[1].done():
            done_key, fut = self._pending
            self._prefix[done_key] = fut.result()
            self._pending = None
            if done_key == key:
                return key
        last = self._last_key
        if self._bg is not None and last is not None and last[1] <= key[1]:
            if self._pending is None:
                self._pending = (key, self._bg.submit(self._compute, self._bg_pipe, key, prompts))
            return last
        if self._pending is not None:  # the loop needs a prefix it cannot do without
            done_key, fut = self._pending
            self._prefix[done_key] = fut.result()
            self._pending = None
            if done_key == key:
                return key
        self._prefix[key] = self._compute(self.pipe, key, prompts)
        return key

    # ------------------------------------------------------------------ the loop
    def _render(self, key, bends, prompt: str):
        from ..bend.render import run_batch
        p, L = key
        return run_batch(self.pipe, bends, self._emb[p], self._prefix[key].clone(), steps=self.spec.steps,
                         guidance=self.spec.guidance, start=L, prompts=[prompt], output_type="pil",
                         seed=self.spec.seed)[0]

    def _setup(self):
        from ..bend.render import latent_shape
        if self.pipe is None:
            if self.status:
                print(f"live: loading the model {self.spec.model} ...", flush=True)
            self.pipe = self.model.load(self.device)
            self.check_bends(self.pipe)
        self._bg = self._bg_pipe = None
        if all((m.target or "latent") == "latent" for m in self.spec.mappings):
            try:
                with models.quiet_loading():  # diffusers' safety-checker notice, as every pipeline bendlab builds
                    self._bg_pipe = type(self.pipe)(**{**self.pipe.components,
                                                       "scheduler": copy.deepcopy(self.pipe.scheduler)})
                self._bg_pipe.set_progress_bar_config(disable=True)
                self._bg = ThreadPoolExecutor(1, thread_name_prefix="bendlab-prefix")
            except Exception:  # noqa: BLE001 - a pipeline that cannot be rebuilt: prefixes in the loop
                self._bg = self._bg_pipe = None
        self.pipe.set_progress_bar_config(disable=True)
        self.controls = Controls(self.spec.mappings, self.spec.prompts, self.spec.steps,
                                 clock=lambda: self.audio_in.seconds, log=self._log, bpm=self.spec.bpm,
                                 cc_map=self.cc, latent_shape=latent_shape(self.pipe, 1))
        self.midi = None if self.midi_port is None else MidiInput(self.controls, self.midi_port)
        self.osc = None if self.osc_address is None else OscServer(self.controls, *self.osc_address)
        if self.osc is not None and self.status:
            print(f"osc: udp {self.osc.address[0]}:{self.osc.address[1]} (addresses: bendlab live --help)", flush=True)
        if self.serve_address is not None:
            from .stream import MjpegServer
            self.server = MjpegServer(*self.serve_address)
            if self.status:
                print(f"stream: {self.server.url} (MJPEG: {self.server.url}stream.mjpg)", flush=True)
        self.analyser = Analyser([m.feature for m in self.spec.mappings], self.spec.sr, self.spec.fps)
        self.shapers = [LiveMapping(m, self.spec.fps, self.spec.halflife, self.spec.soundcheck)
                        for m in self.spec.mappings]
        snap = self.controls.snapshot(0.0)
        self._last_key = self._prefix_for((0, self._start_layer([c.layer for c in snap.mappings])), snap.prompts)
        if self.record is not None:  # last: every port, device and the model are in hand
            from ..session import SessionWriter
            self.writer = SessionWriter(self.record, self._meta())
            self.controls.on_prompt(lambda i, prompts: self.writer.prompts(list(prompts)))

    def _log(self, event: dict) -> None:
        """The controls' log: into the session folder once it exists (nothing happens before the start)."""
        if self.writer is not None:
            self.writer.event(event)

    def _teardown(self):
        for closer in (self.audio_in.close, getattr(self.midi, "close", None), getattr(self.osc, "close", None)):
            if closer is not None:
                closer()
        if self._bg is not None:
            self._bg.shutdown(wait=True)
        if self.writer is not None:
            self.writer.event({"time": self.audio_in.seconds, "kind": "stop", "reason": self.reason})
            self.writer.close()
        if self.server is not None:
            self.server.close()

    def frame(self) -> LiveFrame | None:
        """Analyse the newest window, render, show and record one frame."""
        spec, L = self.spec, self.analyser.L
        t_end, window, wall = self.audio_in.latest(2 * L)
        t = max(0.0, t_end - 1 / spec.fps)  # the window's start: frame time on the audio clock, as offline
        snap = self.controls.snapshot(t_end)
        x = self.analyser(window, snap)
        params = [shaper(x[m.feature], c) for m, shaper, c in zip(spec.mappings, self.shapers, snap.mappings)]
        layers = [c.layer for c in snap.mappings]
        key = self._prefix_for((snap.prompt, self._start_layer(layers)), snap.prompts)
        self._last_key = key
        prompt_index = key[0]
        bends = [m.bend(p, L_) for m, p, L_ in zip(spec.mappings, params, layers)]
        image = self._render(key, bends, snap.prompts[prompt_index])
        now = time.monotonic()
        st = self.stats
        st.latencies.append(now - (wall if wall is not None else now) + self.audio_in.latency)
        st.shown.append(now)
        st.frames += 1
        info = LiveFrame(st.frames - 1, t, prompt_index, tuple(params), st.latencies[-1], st.fps)
        if self.writer is not None:
            self.writer.row(t, prompt_index, [(p, c.low, c.high, c.layer) for p, c in zip(params, snap.mappings)])
        if self.server is not None:
            self.server.show(image)
        if self.on_frame is not None:
            self.on_frame(image, info)
        return info

    def run(self, seconds: float | None = None) -> str:
        """Render live until stopped; returns why it stopped (`CLEAN_STOPS`: "stopped", "seconds", "end of file";
        or the input's failure; `stop_words` says it in words). Ctrl-C stops it cleanly (the recording closed: a
        readable WAV)."""
        check_seconds(seconds)
        self.reason = None
        try:
            self._setup()
        except BaseException:  # a port taken, a device gone, Ctrl-C: release what was taken, leave no session
            self.reason = "start failed"
            self._teardown()
            raise
        status_due = STATUS_EVERY
        previous = _stop_on_sigint(self._stop)
        try:
            self.audio_in.start(self.writer.audio if self.writer is not None else None)
            if self.writer is not None:
                self.writer.event({"time": 0.0, "kind": "start", "input": self._meta()["input"]})
            t0 = time.monotonic()
            due = t0
            while self.reason is None:
                now = time.monotonic()
                self.stats.elapsed = now - t0
                if self._stop.is_set():
                    self.reason = "stopped"
                elif seconds is not None and now - t0 >= seconds:
                    self.reason = "seconds"
                elif self.audio_in.finished:
                    self.reason = "end of file"
                elif self.audio_in.check_alive(t0):
                    self.reason = self.audio_in.failed
                if self.reason is not None:
                    break
                if now < due:
                    time.sleep(min(due - now, 0.05))
                    continue
                if self.audio_in.wall is None:  # no audio yet
                    time.sleep(0.005)
                    continue
                self.frame()
                due = max(due + 1 / self.spec.fps, time.monotonic() - 1 / self.spec.fps)
                self.stats.dropped = max(0, int(self.stats.elapsed * self.spec.fps) - self.stats.frames)
                if self.status and self.stats.elapsed >= status_due:
                    print(self.stats.line(self.spec.fps), flush=True)
                    status_due += STATUS_EVERY
        except KeyboardInterrupt:
            self.reason = "stopped"
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            self._teardown()
        return self.reason

    @property
    def running(self) -> bool:
        """Whether the background thread `start` began is still rendering."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run in a background thread (the notebook): `stop()` ends it; `reason` then says why."""
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, daemon=True, name="bendlab-live")
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join()
