"""Live audio in, on one audio clock: a sounddevice (PortAudio) input stream, or a file played to the output.

`Microphone(device)` captures any input device (a microphone, line-in, a loopback or monitor source: on Linux
with PulseAudio, device "pulse" with PULSE_SOURCE=NAME.monitor captures what another program plays).
`Player(path)` plays a file to the output device and analyses exactly the samples it sends there, on the
output's clock, to rehearse with a track (`loop=True`: again from the start, sample after sample, until stopped);
where no output device opens (a server, CI) it says so and plays silently on the system clock, at the same pace.

Both keep the newest few seconds in a ring buffer for the analysis (`latest`), count every sample (the audio
clock: `seconds`), and hand each block to a sink (the session recorder) from a thread of their own, never from
PortAudio's callback. An input that stops delivering samples for `STALL` seconds (the device unplugged, the
sound server gone) is reported in `failed`.

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import queue
import threading
import time
import warnings

import numpy as np

from ..audio.signal import DEFAULT_SR, check_sr, load_audio
from ..checks import BendlabValueError

STALL = 1.0  # seconds without samples after which an input counts as lost
BLOCK = 256  # samples per PortAudio block (5.8 ms at 44.1 kHz)


class LiveAudioWarning(UserWarning):
    """A fault in live audio that does not end the session (e.g. no output device: playing silently)."""


def _sounddevice():
    try:
        import sounddevice
    except OSError as e:  # no PortAudio library on this machine
        raise BendlabValueError(f"live audio needs the PortAudio library ({e}); accepted: install it (Debian: "
                                "apt-get install libportaudio2)") from None
    return sounddevice


def list_devices() -> str:
    """PortAudio's devices, as `bendlab live --list-devices` prints them (inputs have "in" > 0)."""
    return str(_sounddevice().query_devices())


def check_input_device(device):
    """An input device given by index or (part of) its name, as PortAudio resolves it; one line listing the inputs
    otherwise. None: the default input."""
    sd = _sounddevice()
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    try:
        sd.query_devices(device, "input")
    except (ValueError, sd.PortAudioError) as e:
        names = [f"{i}: {d['name']}" for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]
        raise BendlabValueError(f"input device {device!r}: {str(e).splitlines()[0]}; accepted: "
                                f"{'; '.join(names) or 'no input device exists here'}") from None
    return device


class AudioIn:
    """The ring buffer, the audio clock and the sink shared by both kinds of input."""

    def __init__(self, sr: int = DEFAULT_SR, keep: float = 4.0):
        self.sr = check_sr(sr)
        self.keep = keep
        self.ring = np.zeros(int(keep * sr), np.float32)
        self.samples = 0  # every sample delivered so far: the audio clock
        self.wall = None  # time.monotonic() of the newest block
        self.latency = 0.0  # the device's own latency, s (PortAudio's report)
        self.failed: str | None = None
        self.finished = False
        self.sink = None
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._drain: threading.Thread | None = None

    @property
    def seconds(self) -> float:
        """The audio clock: seconds of audio delivered."""
        return self.samples / self.sr

    def _push(self, block: np.ndarray) -> None:
        block = np.asarray(block, np.float32).reshape(-1)
        n, R = len(block), len(self.ring)
        with self._lock:
            pos = self.samples % R
            first = min(n, R - pos)
            self.ring[pos:pos + first] = block[:first]
            self.ring[:n - first] = block[first:]
            self.samples += n
            self.wall = time.monotonic()
        if self.sink is not None:
            self._queue.put(block.copy())

    def latest(self, n: int) -> tuple[float, np.ndarray, float | None]:
        """(audio time at the end, the newest n samples, wall time they arrived); zeros before the start."""
        if n > len(self.ring):  # older samples are overwritten: they would come back recycled
            raise BendlabValueError(f"{n} samples asked of an input that keeps {len(self.ring)} ({self.keep:g} s); "
                                    "accepted: at most what it keeps")
        with self._lock:
            end, wall = self.samples, self.wall
            idx = (np.arange(end - n, end)) % len(self.ring)
            out = np.where(np.arange(end - n, end) >= 0, self.ring[idx], 0.0).astype(np.float32)
        return end / self.sr, out, wall

    def check_alive(self, started: float) -> str | None:
        """The failure, if the input died or stopped delivering samples for STALL seconds."""
        if self.failed is None and not self.finished:
            last = self.wall if self.wall is not None else started
            if time.monotonic() - last > STALL + (0.0 if self.wall is not None else 2.0):
                self.failed = f"the input stopped delivering audio for over {STALL:g} s (device lost?)"
        return self.failed

    def start(self, sink=None) -> None:
        self.sink = sink
        if sink is not None:
            self._drain = threading.Thread(target=self._drain_loop, daemon=True, name="bendlab-audio-sink")
            self._drain.start()
        self._open()

    def _drain_loop(self) -> None:
        while True:
            block = self._queue.get()
            if block is None:
                return
            self.sink(block)

    def close(self) -> None:
        """Stop the stream; every block delivered has reached the sink when this returns."""
        self._close()
        if self._drain is not None:
            self._queue.put(None)
            self._drain.join()
            self._drain = None

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


class Microphone(AudioIn):
    """Any PortAudio input device (None: the default input), mono (the channels' mean)."""

    def __init__(self, device=None, sr: int = DEFAULT_SR):
        super().__init__(sr)
        self.device = check_input_device(device)
        self.stream = None

    def _open(self) -> None:
        sd = _sounddevice()

        def callback(indata, frames, t, status):
            self._push(indata.mean(axis=1))

        def finished():
            if not self.finished:
                self.failed = self.failed or "the input stream stopped (device lost?)"

        try:
            self.stream = sd.InputStream(device=self.device, samplerate=self.sr, channels=1, blocksize=BLOCK,
                                         dtype="float32", callback=callback, finished_callback=finished)
            self.stream.start()
        except sd.PortAudioError as e:
            raise BendlabValueError(f"input device {self.device!r} does not open at {self.sr} Hz: "
                                    f"{str(e).splitlines()[0]}; accepted: a device from --list-devices") from None
        self.latency = float(self.stream.latency)

    def _close(self) -> None:
        if self.stream is not None:
            self.finished = True
            try:
                self.stream.stop()
                self.stream.close()
            except Exception as e:  # noqa: BLE001 - a vanished device may fail to close; nothing is left to do
                warnings.warn(f"closing the input stream: {e}", LiveAudioWarning, stacklevel=2)
            self.stream = None


class Player(AudioIn):
    """A file played to the output device (None: the default; "none": silently, on the system clock), its samples
    analysed as they are sent. `finished` turns true at its end; with `loop` the file starts again at once (no gap,
    no end)."""

    def __init__(self, path, sr: int = DEFAULT_SR, device=None, loop: bool = False):
        super().__init__(sr)
        self.y = load_audio(path, self.sr)
        self.path, self.device, self.loop = str(path), device, bool(loop)
        self.pos = 0  # the next sample of the file
        self.stream = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def duration(self) -> float:
        return len(self.y) / self.sr

    def _next(self, n: int) -> np.ndarray:
        if self.loop:  # wrap around: pos stays inside the file, so the end is never reached
            idx = (self.pos + np.arange(n)) % len(self.y)
            self.pos = (self.pos + n) % len(self.y)
            return self.y[idx]
        chunk = self.y[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk

    def _open(self) -> None:
        if self.device != "none":
            try:
                self._open_stream()
                return
            except (BendlabValueError, OSError, Exception) as e:  # noqa: BLE001 - PortAudio raises its own types
                warnings.warn(f"no output device opens ({str(e).splitlines()[0]}): playing {self.path} silently "
                              "on the system clock", LiveAudioWarning, stacklevel=3)
        self._thread = threading.Thread(target=self._clock, daemon=True, name="bendlab-player")
        self._thread.start()

    def _open_stream(self) -> None:
        sd = _sounddevice()

        def callback(outdata, frames, t, status):
            chunk = self._next(frames)
            outdata[:len(chunk), 0] = chunk
            outdata[len(chunk):] = 0
            if len(chunk):
                self._push(chunk)
            if self.pos >= len(self.y):
                raise sd.CallbackStop

        def finished():
            self.finished = True

        self.stream = sd.OutputStream(device=self.device, samplerate=self.sr, channels=1, blocksize=BLOCK,
                                      dtype="float32", callback=callback, finished_callback=finished)
        self.stream.start()
        self.latency = float(self.stream.latency)

    def _clock(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set() and self.pos < len(self.y):
            due = int((time.monotonic() - t0) * self.sr) - self.samples
            if due > 0:
                self._push(self._next(due))
            time.sleep(BLOCK / self.sr)
        self.finished = True

    def _close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.stream is not None:
            self.stream.stop()
            self.stream.close()
            self.stream = None
