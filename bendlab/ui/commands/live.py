"""`bendlab live`: bend the model live from a microphone or a playing file, steered by MIDI and OSC; or list the
audio devices and MIDI ports."""

from __future__ import annotations

import argparse

from .common import (CLIError, add_mapping_args, add_model_args, given, mapping_from_args, note_prompt_words,
                     prompts_from_args, setup_device)

LIVE_FLAGS = ("fps", "steps", "guidance", "seed", "model", "halflife", "soundcheck", "bpm")


def add_parser(sub) -> None:
    from ...live.causal import DEFAULT_HALFLIFE, LIVE_FEATURES
    from ...live.controls import CC_FORMAT
    from ...live.osc import OSC_ADDRESSES
    from ...live.loop import LIVE_STEPS, LiveSpec
    from ...models.sampler import USUAL
    from ...paper import LAYER, STEPS, fit_layer
    spec = LiveSpec.__dataclass_fields__
    osc = "\n".join(f"  {k:<28} {v}" for k, v in OSC_ADDRESSES.items())
    lv = sub.add_parser("live", help="bend the model live from a microphone or a playing file (MIDI, OSC, tempo)",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Render frame after frame from the newest audio (the same features as "
                        "offline, normalised by a running range), always the newest state: when rendering is slower "
                        "than --fps, frames are dropped, never queued. Prints fps and latency every second. "
                        "Frames are served as an MJPEG stream with --serve (a source for OBS, VLC or a browser); "
                        "--record DIR writes a session folder that `bendlab video --session DIR` re-renders. "
                        f"Defaults: {LIVE_STEPS} steps (fewer where the model's usual count is smaller), the mapping "
                        f"bent at layer {fit_layer(LAYER, LIVE_STEPS)} of {LIVE_STEPS} (the paper's {LAYER} of "
                        f"{STEPS}), {spec['fps'].default:g} fps.",
                        epilog="OSC addresses (--osc):\n" + osc + "\n\nMIDI (--midi-in): note velocity is the "
                        "midi_velocity / midi_onset features, CC N the midi_cc:N feature; MIDI clock (24 per beat) "
                        "sets the tempo of beat, beat_phase, bar_phase and lfo:K (else --bpm).\n--cc " + CC_FORMAT)
    i = lv.add_argument_group("audio in")
    i.add_argument("--play", metavar="FILE", help="play this file to the output device and analyse its samples as "
                   "they are played (to rehearse with a track)")
    i.add_argument("--loop", action="store_true", help="with --play: play the file again from the start, without "
                   "a gap, until --seconds or Ctrl-C")
    i.add_argument("--output-device", help="where --play plays: a PortAudio device, or none (silently, on the "
                   "system clock; also the fallback where no output device opens)")
    i.add_argument("--input-device", help="capture this input (index or name from --list-devices; default: the "
                   "default input). With PulseAudio: pulse, and PULSE_SOURCE=NAME.monitor captures a monitor")
    i.add_argument("--list-devices", action="store_true", help="list the audio devices and exit")
    i.add_argument("--halflife", type=float, help="running range's half-life, s > 0 (default "
                   f"{DEFAULT_HALFLIFE:g}): how fast the normalisation forgets a loud passage")
    i.add_argument("--soundcheck", type=float, help="instead, the range heard in the first SECONDS, then fixed")
    lv.add_argument("--prompt", help="the first prompt (OSC /bendlab/prompt changes it live)")
    lv.add_argument("--prompts", nargs="+", help="more prompts, for --cc or OSC to switch between")
    g = lv.add_argument_group("mapping (one)")
    add_mapping_args(g, features=", ".join(LIVE_FEATURES) + ", lfo:K, midi_cc:N", steps=LIVE_STEPS)
    c = lv.add_argument_group("control")
    c.add_argument("--midi-in", metavar="PORT", help="MIDI input port (name or part of it; --list-midi)")
    c.add_argument("--list-midi", action="store_true", help="list the MIDI input ports and exit")
    c.add_argument("--cc", action="append", metavar="CC=J.FIELD[:LO:HI]", help="map a MIDI CC to mapping J's low, "
                   "high, layer or param (repeatable), e.g. 1=0.high:0:6.2832")
    c.add_argument("--bpm", type=float, help="tempo without MIDI clock, beats per minute (default "
                   f"{spec['bpm'].default:g})")
    c.add_argument("--osc", metavar="[HOST:]PORT", help="serve OSC on this UDP port (host 127.0.0.1 unless given)")
    o = lv.add_argument_group("output")
    o.add_argument("--serve", metavar="[HOST:]PORT", help="MJPEG stream of the frames at http://HOST:PORT/ "
                   "(host 127.0.0.1 unless given; port 0 picks a free one)")
    o.add_argument("--record", metavar="DIR", help="write a session folder: audio.wav, automation.csv, "
                   "events.jsonl, session.json")
    o.add_argument("--seconds", type=float, help="stop after SECONDS (default: until Ctrl-C or the file ends)")
    o.add_argument("--fps", type=float, help="target frame rate, never exceeded; also the analysis window (1/fps "
                   f"s; default {spec['fps'].default:g})")
    add_model_args(lv, steps=f"{LIVE_STEPS}, or the model's usual count where smaller: {USUAL['lcm'][0]} for an "
                   f"LCM model, {USUAL['turbo'][0]} for a Turbo model")
    lv.set_defaults(func=run)


def run(a) -> None:
    """`bendlab live`: list devices or ports, or check every flag, load the model and play until stopped."""
    from ...live import audio_in as audioin
    from ...live.midi_in import list_midi
    from ...live.loop import CLEAN_STOPS, Live, LiveSpec, check_seconds, stop_words
    if a.list_devices or a.list_midi:
        if a.list_devices:
            print(audioin.list_devices())
        if a.list_midi:
            ports = list_midi()
            print("\n".join(ports) if ports else "no MIDI input ports (is a MIDI or JACK server running?)")
        return
    if a.play is not None and a.input_device is not None:
        raise CLIError("--play and --input-device both given; accepted: one audio input (--play FILE plays a file "
                       "to --output-device and analyses it; --input-device captures a device)")
    if a.loop and a.play is None:
        raise CLIError("--loop given without --play; accepted: --loop with --play FILE (a live input has no end to "
                       "loop)")
    check_seconds(a.seconds)
    if a.record is not None and not a.record.strip():
        raise CLIError(f"--record {a.record!r} is empty; accepted: a new or empty folder, e.g. --record take1")
    m = mapping_from_args(a)
    spec = LiveSpec(prompts=prompts_from_args(a) or LiveSpec().prompts,
                    mappings=[m] if m is not None else LiveSpec().mappings, **given(a, LIVE_FLAGS))
    setup_device(a)
    note_prompt_words(spec.model, spec.prompts)
    import warnings
    warnings.formatwarning = lambda message, *args, **kwargs: f"bendlab live: warning: {message}\n"
    sr = spec.sr
    source = audioin.Player(a.play, sr, a.output_device, loop=a.loop) if a.play is not None else \
        audioin.Microphone(a.input_device, sr)
    session = Live(spec, source, device=a.device, record=a.record, midi_in=a.midi_in, cc=a.cc or (), osc=a.osc,
                   serve=a.serve)
    print(f"live: {spec.prompts[0]!r}, {session.spec.steps} steps, " + ", ".join(
        f"{mp.feature} -> {mp.op} {mp.low:g}..{mp.high:g} at layer {mp.layer}" for mp in session.spec.mappings) +
        f"; input: {a.play or a.input_device or 'the default input'}" + (", looped" if a.loop else "") +
        (f"; recording into {a.record}/" if a.record else "") + "; Ctrl-C stops", flush=True)
    reason = session.run(a.seconds)
    print(session.stats.line(spec.fps) + f"; stopped: {stop_words(reason, a.seconds)}", flush=True)
    if a.record:
        print(f"session in {a.record}/: re-render it with bendlab video --session {a.record} --out OUT.mp4")
    if reason not in CLEAN_STOPS:
        raise CLIError(f"{reason}; the session folder is complete up to there" if a.record else reason)
