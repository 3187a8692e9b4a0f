"""A music render's defaults, in one place and without torch (the command line's help reads them)."""

STEPS = 50  # denoising steps of a music render: layers 0..50, as the paper's images
GUIDANCE = 7.0  # classifier-free guidance: Stable Audio Open's default
SEED = 46  # the paper's seed
STRENGTH = 0.5  # audio-to-audio: how much of the recording is re-imagined (0..1)
WHERE_FORMS = "all, channel:C, group:G (channels 4G..4G+3), time:A-B (seconds of the output), fraction:P[:seed=S]"
