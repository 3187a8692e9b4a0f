"""The music synthesiser (bendlab.audio.synth): pitches where the note names say, drum onsets at the tempo, sustained
sounds without onsets, captions that say what the audio holds, seeded output, one-line errors for bad input."""

import numpy as np
import pytest

from bendlab.audio import synth
from bendlab.checks import BendlabValueError

SR = synth.DEFAULT_SR


def fft_peak_hz(y, sr=SR):
    """Frequency (Hz) of the strongest bin of the Hann-windowed spectrum, refined by parabolic interpolation."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    k = int(np.argmax(spec[1:-1])) + 1
    a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / len(y)


def pyin_midi(y, sr=SR):
    import librosa
    f0, voiced, _ = librosa.pyin(y, fmin=50, fmax=2000, sr=sr, frame_length=1024, hop_length=256)
    return float(librosa.hz_to_midi(np.median(f0[voiced])))


def onsets(y, sr=SR):
    """Onset times (s): librosa spectral flux, un-normalised with an absolute threshold (a steady tone has none)."""
    import librosa
    y = np.concatenate([np.zeros(int(0.1 * sr), np.float32), y])  # an onset at time 0 counts
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=64, n_fft=512)
    on = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=64, normalize=False, delta=1.0, wait=6,
                                    units="time")
    return on - 0.1


def centroid(y, sr=SR):
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y)))) ** 2
    return float((np.fft.rfftfreq(len(y), 1 / sr) * spec).sum() / spec.sum())


def test_note_names_and_frequencies():
    assert synth.note_pitch("A", 4) == 69 and synth.note_pitch("C", 4) == 60 and synth.note_pitch("B", 2) == 47
    assert synth.midi_hz(69) == 440.0 and abs(synth.midi_hz(60) - 261.626) < 1e-3
    assert synth.scale_pitches("A", "minor", 3) == [57, 59, 60, 62, 64, 65, 67]
    assert synth.triad("C", "major", 4) == [60, 64, 67] and synth.triad("D", "minor", 4) == [62, 65, 69]


@pytest.mark.parametrize("pitch", [45, 57, 64, 69, 76])
def test_piano_note_pitch_by_pyin(pitch):
    y = synth.piano_note(pitch, 1.0)
    assert y.dtype == np.float32 and y.shape == (SR,)
    assert abs(pyin_midi(y) - pitch) < 0.3


@pytest.mark.parametrize("make, pitch", [
    (lambda: synth.bell(81, 2.0), 81),
    (lambda: synth.bell(93, 2.0), 93),
    (lambda: synth.bass_drone("E", 2.0, octave=2), 40),
    (lambda: synth.bass_drone("A", 2.0, octave=1), 33),
])
def test_fundamental_is_the_strongest_partial(make, pitch):
    assert abs(fft_peak_hz(make()) - synth.midi_hz(pitch)) < 0.01 * synth.midi_hz(pitch)


def level(y, hz, sr=SR):
    """Largest Hann-windowed spectrum magnitude within 3 Hz of `hz`."""
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return spec[np.abs(np.fft.rfftfreq(len(y), 1 / sr) - hz) < 3].max()


def test_chords_and_pads_hold_their_triad():
    for y, notes in ((synth.piano_chord("C", "major", 1.0), [60, 64, 67]),
                     (synth.pad("A", "minor", 2.0), [57, 60, 64])):
        for p in notes:  # each chord tone stands far above the semitone beside it
            assert level(y, synth.midi_hz(p)) > 10 * level(y, synth.midi_hz(p + 1)), p


@pytest.mark.parametrize("bpm", [70, 90, 120, 150, 160])
def test_drum_onsets_follow_the_tempo(bpm):
    y = synth.drum_pattern(bpm, 4.0, rng=np.random.default_rng(bpm))
    on = onsets(y)
    eighth = 30 / bpm
    assert abs(np.median(np.diff(on)) - eighth) < 0.1 * eighth  # one hi-hat every eighth note
    assert abs(len(on) - 4.0 / eighth) <= 2


def test_sustained_sounds_have_no_onsets_after_the_start():
    for y in (synth.pad("F", "major", 2.048), synth.bass_drone("D", 2.048), synth.pad("B", "minor", 2.048, octave=4)):
        assert len(onsets(y)) <= 1
    phrase = synth.piano_phrase("C", "major", 150, 2.048, rng=np.random.default_rng(0))
    assert len(onsets(phrase)) >= 5  # a phrase of eighth notes at 150 bpm (0.2 s each) does have them


def test_captions_match_the_audio():
    rng = np.random.default_rng(0)
    high, low = [], []
    for _ in range(12):
        p = synth.captioned_phrase("bell", rng)
        assert p.caption.startswith("a ") and p.caption.endswith(f"bell in {p.attributes['key']}")
        (high if "high" in p.caption else low if "low" in p.caption else []).append(centroid(p.audio))
    assert high and low and min(high) > 2 * max(low)
    for _ in range(6):  # "a piano note in X" is an X
        p = synth.captioned_phrase("piano_note", rng)
        key = p.caption.split()[-1]
        pc = round(pyin_midi(p.audio)) % 12
        assert pc == synth.PITCH_CLASS[key], p.caption
    rates = {}
    for _ in range(9):  # "at N bpm": onsets N / 30 a second; fast loops busier than slow ones
        p = synth.captioned_phrase("drum_loop", rng)
        bpm = int(p.caption.split()[-2])
        assert bpm == p.attributes["bpm"] and p.attributes["tempo"] in p.caption
        rates.setdefault(p.attributes["tempo"], []).append(len(onsets(p.audio)) / 2.048)
    assert min(rates.get("fast", [9])) > max(rates.get("slow", [0]))
    drone = synth.captioned_phrase("bass_drone", rng)
    assert drone.caption.startswith("a low bass drone in ") and centroid(drone.audio) < 300


def test_every_kind_is_seeded_float32_and_normalised():
    for kind in synth.KINDS:
        a = synth.captioned_phrase(kind, np.random.default_rng(3))
        b = synth.captioned_phrase(kind, np.random.default_rng(3))
        assert a.caption == b.caption and np.array_equal(a.audio, b.audio)
        assert a.audio.dtype == np.float32 and a.audio.shape == (round(2.048 * SR),)
        assert abs(np.abs(a.audio).max() - 0.5) < 1e-6 and a.sr == SR


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(BendlabValueError, match="key 'H'"):
        synth.piano_chord("H", "major")
    with pytest.raises(BendlabValueError, match="mode"):
        synth.pad("C", "dorian")
    with pytest.raises(BendlabValueError, match="tempo"):
        synth.drum_pattern(0, rng=np.random.default_rng(0))
    with pytest.raises(BendlabValueError, match="sample rate"):
        synth.bell(69, 1.0, sr=100)
    with pytest.raises(BendlabValueError, match="phrase kind"):
        synth.captioned_phrase("organ", np.random.default_rng(0))
