"""Live performance (layer 4): `loop.Live` renders from the microphone (`audio_in`) with causal features
(`causal`), steered by MIDI and OSC (`control`), and serves frames as MJPEG (`stream`).
"""

from .audio_in import AudioIn, BLOCK, LiveAudioWarning, Microphone, Player, STALL, check_input_device, list_devices
from .causal import (Analyser, DEFAULT_HALFLIFE, LIVE_FEATURES, LIVE_MIDI, LIVE_RHYTHM, LiveMapping, RunningRange,
                     check_live_feature)
from .control import (CCTarget, CC_FORMAT, CLOCK_TICKS, CLOCK_TIMEOUT, ControlWarning, Controls, FIELDS,
                      MAX_PROMPT_CHARS, MIDI_POLL, MIN_TICKS, MappingControl, MidiInput, OSC_ADDRESSES, OscServer,
                      Snapshot, TICKS_PER_BEAT, check_midi_port, check_prompt, list_midi, parse_cc, parse_osc)
from .loop import LIVE_STEPS, Live, LiveFrame, LiveSpec, LiveStats, STATUS_EVERY, check_seconds, resolve
from .stream import BOUNDARY, MjpegServer, PAGE
