"""Live performance (layer 4): `loop.Live` renders from the microphone (`audio_in`) with causal features
(`causal`), steered by MIDI and OSC (`control`), and serves frames as MJPEG (`stream`).
"""

from .audio_in import AudioIn, BLOCK, check_input_device, list_devices, LiveAudioWarning, Microphone, Player, STALL
from .causal import (Analyser, check_live_feature, DEFAULT_HALFLIFE, LIVE_FEATURES, LIVE_MIDI, LIVE_RHYTHM, LiveMapping,
                     RunningRange)
from .controls import (CC_FORMAT, CCTarget, check_prompt, CLOCK_TICKS, CLOCK_TIMEOUT, Controls, ControlWarning, FIELDS,
                       MappingControl, MAX_PROMPT_CHARS, MIN_TICKS, parse_cc, short_value, Snapshot, TICKS_PER_BEAT,
                       warn_safely)
from .loop import (check_seconds, CLEAN_STOPS, Live, LIVE_STEPS, LiveFrame, LiveSpec, LiveStats, resolve, STATUS_EVERY,
                   stop_words)
from .midi_in import check_midi_port, list_midi, MIDI_POLL, MidiInput
from .osc import OSC_ADDRESSES, OscServer, parse_osc
from .stream import BOUNDARY, MjpegServer, PAGE
