"""Convert CLIP's own BPE vocabulary (shipped in the open_clip_torch wheel, MIT licence) to a CLIPTokenizer.

The conversion follows CLIP's SimpleTokenizer: 256 byte symbols, the same with '</w>', one token per merge of
the first 48,894 merges, then <|startoftext|> and <|endoftext|>: 49,408 tokens, ids identical to SD v1.x.
"""

from __future__ import annotations

import glob
import gzip
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from transformers import CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode  # GPT-2's byte -> unicode map

BPE_NAME = "open_clip/bpe_simple_vocab_16e6.txt.gz"


def fetch_bpe(workdir: Path) -> bytes:
    """Download the open_clip_torch wheel (no dependencies) with pip and read the BPE file out of it."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "open_clip_torch==3.3.0",
                    "-d", str(workdir)], check=True)
    wheel = glob.glob(str(workdir / "open_clip_torch-*.whl"))[0]
    with zipfile.ZipFile(wheel) as z:
        return z.read(BPE_NAME)


def build(out: Path, bpe_gz: bytes | None = None) -> CLIPTokenizer:
    """Write vocab.json + merges.txt into `out` and return the CLIPTokenizer loaded from them."""
    if bpe_gz is None:
        with tempfile.TemporaryDirectory() as tmp:
            bpe_gz = fetch_bpe(Path(tmp))
    lines = gzip.decompress(bpe_gz).decode("utf-8").split("\n")[1: 49152 - 256 - 2 + 1]
    merges = [tuple(m.split()) for m in lines]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    tok = CLIPTokenizer(vocab={t: i for i, t in enumerate(vocab)}, merges=merges,
                        model_max_length=77)
    tok.save_pretrained(out)
    ids = tok("a floating orb").input_ids
    assert ids == [49406, 320, 12619, 36958, 49407], f"CLIP BPE conversion is wrong: {ids}"
    return tok


if __name__ == "__main__":
    t = build(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/cliptok"))
    print(len(t), t("a floating orb").input_ids)
