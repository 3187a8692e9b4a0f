"""Audio in, features out (layer 1: imports only the base modules).

`signal` decodes a track and cuts it into one window per video frame; `spectral` computes the paper's features
of each window; `embed` the PCA and EnCodec embeddings; `rhythm` beats and LFOs; `midi` a MIDI file's notes and
controllers; `features` names them (`parse_feature`) and caches them per track (`Features`); `shaping` smooths
and scales a curve into an operator's range.
"""

from .embed import (EMBEDDINGS, ENCODEC_BLOCK_S, ENCODEC_ENV, encodec_embedding, encodec_folder, encodec_latents,
                    load_encodec, principal_component, principal_components)
from .features import (FEATURES, FeatureRef, Features, MIDI, PARAMETRIC, RHYTHM, SOURCES, SPECTRAL,
                       UNITS, audio_features, check_feature, check_sources, compute_features, parse_feature, write_csv)
from . import midi, rhythm
from .shaping import MAX_MEDIAN, SCALINGS, check_median, check_range, normalise, scale, shape, smooth
from .signal import (AUDIO_SUFFIXES, DEFAULT_SR, MAX_FPS, MAX_SR, MIN_SR, PIANO_NOTES, check_fps, check_sr,
                     frame_windows, load_audio, synth_piano)
from .spectral import BANDS, N_MELS, spectral_features, spectral_moments, window_features
