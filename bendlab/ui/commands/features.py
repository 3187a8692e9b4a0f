"""`bendlab features`: a track's per-frame audio features to a CSV (and the mappings' curves to a plot), to look
at before rendering."""

from __future__ import annotations

from ..recipe import read_video
from .common import add_mapping_args, mapping_from_args


def add_parser(sub) -> None:
    from ...video.spec import VideoSpec
    v_ = VideoSpec.__dataclass_fields__
    ft = sub.add_parser("features", help="per-frame audio features to a CSV (and a plot), before rendering",
                        description="One row per video frame, one column per feature (every feature the video "
                        "command accepts); prints the estimated tempo. With --plot, a figure of the curves and of "
                        "each mapping's parameter (from --recipe or the mapping flags).")
    ft.add_argument("audio", help="wav, flac, ogg or mp3 file")
    ft.add_argument("--fps", type=float, help=f"frames per second (default {v_['fps'].default:g})")
    ft.add_argument("--sr", type=int, help=f"sample rate to analyse at, Hz (default {v_['sr'].default})")
    ft.add_argument("--midi", help="a .mid file: adds midi_velocity, midi_pitch, midi_onset")
    ft.add_argument("--plot", help="also draw the curves into this .png/.pdf/.svg")
    ft.add_argument("--out", required=True, help="output .csv")
    ft.add_argument("--recipe", help="a video recipe: its [[mapping]] curves are plotted")
    add_mapping_args(ft.add_argument_group("mapping (its parameter curve is plotted)"))
    ft.set_defaults(func=run)


def run(a) -> None:
    from ... import audio
    from ..plots import plot_curves
    from ...files import check_output, savefig_atomic
    from ...video.spec import VideoSpec
    out = check_output(a.out, (".csv",))
    plot = check_output(a.plot, (".png", ".pdf", ".svg")) if a.plot else None
    fields = VideoSpec.__dataclass_fields__
    # the rules `video` applies to the same values (a flag given is checked, never replaced by the default)
    fps = audio.check_fps(a.fps if a.fps is not None else fields["fps"].default)
    sr = audio.check_sr(a.sr if a.sr is not None else fields["sr"].default)
    mappings = read_video(a.recipe)["mappings"] if a.recipe else []
    m = mapping_from_args(a)
    if m is not None:
        mappings.append(m)
    audio.check_sources([m.feature for m in mappings], a.midi)  # before the analysis
    feats = audio.audio_features(a.audio, fps, sr, a.midi)
    defaults, left_out = feats.default_names()
    table_names = list(dict.fromkeys(defaults + [m.feature for m in mappings]))
    audio.write_csv(feats, out, table_names)
    if left_out:
        print(f"note: {', '.join(left_out)} left out: a {feats.n_frames}-frame track has no such principal component")
    print(f"tempo: {feats.tempo:.1f} BPM")
    print(f"wrote {out}: {feats.n_frames} frames x {len(table_names)} features at {feats.fps:g} fps")
    if plot:
        savefig_atomic(plot_curves(feats, mappings), plot, dpi=110)
        print(f"wrote {plot}")
