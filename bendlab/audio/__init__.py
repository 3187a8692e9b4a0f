"""Audio in, features out (layer 1: imports only the base modules).

`signal` decodes a track and cuts it into one window per video frame; `spectral` computes the paper's features
of each window; `embed` the PCA and EnCodec embeddings; `rhythm` beats and LFOs; `midi` a MIDI file's notes and
controllers; `features` names them (`parse_feature`) and caches them per track (`Features`); `shaping` smooths
and scales a curve into an operator's range.
"""

from ..lazy import exports

# the names the sub-package offers, by the module that defines each: imported on first use (`bendlab.lazy`)
__all__ = exports(__name__, {
    "embed": ("EMBEDDINGS", "ENCODEC_BLOCK_S", "encodec_embedding", "ENCODEC_ENV", "encodec_folder", "encodec_latents",
              "load_encodec", "principal_component", "principal_components"),
    "features": ("audio_features", "check_feature", "check_sources", "compute_features", "FeatureRef", "FEATURES",
                 "Features", "MIDI", "PARAMETRIC", "parse_feature", "reads_track", "RHYTHM", "SOURCES", "SPECTRAL",
                 "UNITS", "write_csv"),
    "shaping": ("check_median", "check_range", "MAX_MEDIAN", "normalise", "scale", "SCALINGS", "shape", "smooth"),
    "signal": ("AUDIO_SUFFIXES", "check_fps", "check_sr", "DEFAULT_SR", "frame_windows", "load_audio", "MAX_FPS",
               "MAX_SR", "MIN_SR", "PIANO_NOTES", "synth_piano"),
    "spectral": ("BANDS", "N_MELS", "spectral_features", "spectral_moments", "window_features"),
})
