"""A musician's MIDI performance as per-frame features (read with mido), so played notes drive bends exactly.

    midi_velocity   loudest velocity among the notes sounding during the frame's window, 0..1 (0: none)
    midi_pitch      highest pitch sounding during the window, MIDI note number (0: none)
    midi_onset      loudest velocity among the notes that start in the window, 0..1 (0: none)
    midi_cc:N       value of controller N at the window's start, 0..1 (held between messages; 0 before the first)

Times come from the file's own tempo map (mido converts ticks to seconds); all channels and tracks are merged.

Notebook: notebooks/07_audio_reactive_video.ipynb
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..checks import BendlabValueError, check_input_file


@dataclass
class Midi:
    notes: list[tuple[float, float, int, int]] = field(default_factory=list)  # (start s, end s, pitch, velocity)
    cc: dict[int, list[tuple[float, int]]] = field(default_factory=dict)  # controller -> [(time s, value)]


def read(path: str | Path) -> Midi:
    """The notes and controller curves of a .mid file (one-line errors for a missing or corrupt file)."""
    import mido
    p = check_input_file("MIDI file", path)
    try:
        messages = list(mido.MidiFile(p))
    except (OSError, EOFError, ValueError, KeyError, IndexError, TypeError) as e:
        raise BendlabValueError(f"MIDI file {str(p)!r} could not be read ({type(e).__name__}: "
                                f"{' '.join(str(e).split())[:120]}); accepted: a standard MIDI file (.mid)") from None
    out, t, sounding = Midi(), 0.0, {}
    for msg in messages:
        t += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            sounding.setdefault((msg.channel, msg.note), []).append((t, msg.velocity))
        elif msg.type in ("note_off", "note_on") and sounding.get((msg.channel, msg.note)):
            start, vel = sounding[(msg.channel, msg.note)].pop(0)
            out.notes.append((start, t, msg.note, vel))
        elif msg.type == "control_change":
            out.cc.setdefault(msg.control, []).append((t, msg.value))
    for (_, note), starts in sounding.items():  # notes never released last to the end of the file
        out.notes += [(start, t, note, vel) for start, vel in starts]
    return out


def frame_feature(m: Midi, name: str, arg: float | None, n_frames: int, fps: float) -> np.ndarray:
    """One MIDI feature for each video frame i, over its window [i/fps, (i+1)/fps)."""
    t0 = np.arange(n_frames) / fps
    t1 = t0 + 1 / fps
    x = np.zeros(n_frames)
    if name == "midi_cc":
        events = m.cc.get(int(arg), [])
        if not events:
            return x
        times = np.array([t for t, _ in events])
        values = np.array([v for _, v in events], dtype=float) / 127
        k = np.searchsorted(times, t0, side="right") - 1
        return np.where(k >= 0, values[np.clip(k, 0, None)], 0.0)
    for start, end, pitch, vel in m.notes:
        if name == "midi_onset":
            hit = (start >= t0) & (start < t1)
            x[hit] = np.maximum(x[hit], vel / 127)
        else:
            hit = (start < t1) & (end > t0)
            x[hit] = np.maximum(x[hit], vel / 127 if name == "midi_velocity" else pitch)
    return x


def write_notes(notes, path: str | Path, bpm: float = 120.0) -> Path:
    """Write notes (onset s, MIDI pitch, velocity 0..1, length s), e.g. `audio.PIANO_NOTES`, as a one-track .mid."""
    import mido
    tempo = mido.bpm2tempo(bpm)
    events = []
    for onset, pitch, vel, length in notes:
        v = max(1, min(127, round(vel * 127)))
        events += [(onset, 1, mido.Message("note_on", note=pitch, velocity=v)),
                   (onset + length, 0, mido.Message("note_off", note=pitch, velocity=0))]
    f = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo)])
    now = 0
    for t, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        tick = round(mido.second2tick(t, 480, tempo))
        track.append(msg.copy(time=tick - now))
        now = tick
    f.tracks.append(track)
    f.save(path)
    return Path(path)
