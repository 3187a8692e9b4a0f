"""MIDI in for live controls (mido + python-rtmidi), writing `live.controls.Controls`.

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

Notebook: notebooks/08_live.ipynb
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time

from ..checks import BendlabValueError, check_str
from .controls import Controls, warn_safely

MIDI_POLL = 0.2  # seconds between checks that the MIDI input port still exists
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
            warn_safely(self.controls, f"MIDI message {msg!s:.60} from {self.name!r} failed ({type(e).__name__}: "
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
                    warn_safely(self.controls, f"MIDI port {self.name!r} vanished; the session goes on without it "
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
                        warn_safely(self.controls, f"MIDI port {self.name!r} is back but the log failed "
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


