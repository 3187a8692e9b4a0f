"""Live mode with the real parts: the causal analysis against the offline one, the loop on the shipped model,
PulseAudio with a null sink as the microphone (no mocks of the audio stack), the MJPEG stream, faults."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import wave
from pathlib import Path

import numpy as np
import pytest

from bendlab import audio, causal
from bendlab.control import MappingControl
from bendlab.mapping import Mapping

PIANO = Path(__file__).resolve().parents[1] / "bendlab" / "data" / "piano.ogg"
SR, FPS = 44100, 20


# ------------------------------------------------------------------------------------------ causal analysis
def test_live_window_features_equal_the_offline_ones():
    """On the same windows, the live analysis of the newest window gives the offline features exactly (onset
    included: its log-mel has an absolute floor, -100 dB, not one relative to the loudest bin heard)."""
    y = audio.load_audio(PIANO, SR)
    offline = audio.spectral_features(y, SR, FPS)
    win = audio.frame_windows(y, SR, FPS)
    an = causal.Analyser(list(audio.SPECTRAL), SR, FPS)
    snap = type("Snap", (), {"beats": 0.0})()
    for i in range(1, len(win)):
        got = an(np.concatenate([win[i - 1], win[i]]), snap)
        for name in audio.SPECTRAL:
            assert got[name] == pytest.approx(offline[name][i], rel=1e-9, abs=1e-12), (name, i)


def test_running_range_widens_at_once_and_decays_with_its_half_life():
    r = causal.RunningRange(fps=10, halflife=2.0)
    assert r(0.0) == 0.0
    assert r(1.0) == 1.0  # a new maximum: the range widens at once, the value is at its top
    for _ in range(20):  # 2 s at 10 fps of 0.5: the top decays halfway from 1 towards 0.5
        u = r(0.5)
    assert r.hi == pytest.approx(0.75, abs=1e-9)
    assert 0.25 < r.lo < 0.5 and 0.4 < u < 0.6  # the floor is drawn towards the value too


def test_soundcheck_freezes_the_range():
    r = causal.RunningRange(fps=10, soundcheck=1.0)
    for v in np.linspace(0, 2, 10):  # the first second sets the range 0..2
        r(v)
    assert r(1.0) == pytest.approx(0.5)
    assert r(5.0) == 1.0 and r.hi == 2.0  # louder later: clipped, not re-ranged


def test_live_mapping_shapes_as_offline():
    """With the range known (a soundcheck over the whole input), the live shaping (gate, compressor, curve)
    equals the offline scale of the same values."""
    x = np.abs(np.sin(np.linspace(0, 9, 60))) + 0.1
    m = Mapping(feature="rms", op="rotate1", low=-1.0, high=2.0, gate=0.1, threshold=0.6, ratio=3, curve=1.5)
    live = causal.LiveMapping(m, fps=FPS, soundcheck=len(x) / FPS)
    c = MappingControl(m.low, m.high, 8, None)
    for v in x:  # the soundcheck pass: the range is set
        live(v, c)
    got = [live(v, c) for v in x]
    want = audio.scale(x, m.low, m.high, gate=m.gate, threshold=m.threshold, ratio=m.ratio, curve=m.curve)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_a_cc_value_replaces_the_audio_feature():
    m = Mapping(feature="rms", op="multiply", low=1.0, high=3.0)
    live = causal.LiveMapping(m, fps=FPS)
    assert live(0.3, MappingControl(1.0, 3.0, 4, 0.5)) == pytest.approx(2.0)
    assert live(0.3, MappingControl(1.0, 5.0, 4, 1.0)) == pytest.approx(5.0)


@pytest.mark.parametrize("feature", ["pca:1", "rms@percussive", "midi_pitch", "embed16"])
def test_features_that_need_the_whole_track_are_refused_live(feature):
    with pytest.raises(ValueError, match="accepted live") as e:
        causal.check_live_feature(feature)
    assert "\n" not in str(e.value)
