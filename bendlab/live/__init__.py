"""Live performance (layer 4): `loop.Live` renders from the microphone (`audio_in`) with causal features
(`causal`), steered by MIDI and OSC (`control`), and serves frames as MJPEG (`stream`).
"""

from ..lazy import exports

# the names the sub-package offers, by the module that defines each: imported on first use (`bendlab.lazy`)
__all__ = exports(__name__, {
    "audio_in": ("AudioIn", "BLOCK", "check_input_device", "list_devices", "LiveAudioWarning", "Microphone", "Player",
                 "STALL"),
    "causal": ("Analyser", "check_live_feature", "DEFAULT_HALFLIFE", "LIVE_FEATURES", "LIVE_MIDI", "LIVE_RHYTHM",
               "LiveMapping", "RunningRange"),
    "controls": ("CC_FORMAT", "CCTarget", "check_prompt", "CLOCK_TICKS", "CLOCK_TIMEOUT", "Controls", "ControlWarning",
                 "FIELDS", "MappingControl", "MAX_PROMPT_CHARS", "MIN_TICKS", "parse_cc", "short_value", "Snapshot",
                 "TICKS_PER_BEAT", "warn_safely"),
    "loop": ("check_seconds", "CLEAN_STOPS", "Live", "LIVE_STEPS", "LiveFrame", "LiveSpec", "LiveStats", "resolve",
             "STATUS_EVERY", "stop_words"),
    "midi_in": ("check_midi_port", "list_midi", "MIDI_POLL", "MidiInput"),
    "osc": ("OSC_ADDRESSES", "OscServer", "parse_osc"),
    "stream": ("BOUNDARY", "MjpegServer", "PAGE"),
})
