"""Live performance (layer 4): `loop.Live` renders from the microphone (`audio_in`) with causal features
(`causal`), steered by MIDI and OSC (`control`), and serves frames as MJPEG (`stream`).
"""

from .audio_in import AudioIn, BLOCK, check_input_device, list_devices, LiveAudioWarning, Microphone, Player, STALL
from .causal import (Analyser, check_live_feature, DEFAULT_HALFLIFE, LIVE_FEATURES, LIVE_MIDI, LIVE_RHYTHM, LiveMapping,
                     RunningRange)
from .control import (CC_FORMAT, CCTarget, check_midi_port, check_prompt, CLOCK_TICKS, CLOCK_TIMEOUT, Controls,
                      ControlWarning, FIELDS, list_midi, MappingControl, MAX_PROMPT_CHARS, MIDI_POLL, MidiInput,
                      MIN_TICKS, OSC_ADDRESSES, OscServer, parse_cc, parse_osc, Snapshot, TICKS_PER_BEAT)
from .loop import check_seconds, Live, LIVE_STEPS, LiveFrame, LiveSpec, LiveStats, resolve, STATUS_EVERY
from .stream import BOUNDARY, MjpegServer, PAGE
