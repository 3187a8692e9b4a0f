"""The torch device and CPU threads a render runs on, checked in one line."""

from __future__ import annotations

import os
import re

from ..checks import BendlabValueError, is_int


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def check_device(device: str | None) -> str:
    """The torch device to use: None -> cuda when available, else cpu; one-line errors for anything else."""
    if device is None:
        return default_device()
    if not isinstance(device, str) or not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device):
        raise BendlabValueError(f"device {device!r} is not a device; accepted: cpu, cuda, cuda:N, mps")
    import torch  # a device was asked for: torch says whether it is there
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise BendlabValueError(f"device {device!r} asked for but no CUDA GPU is available; accepted: 'cpu'")
        n = torch.cuda.device_count()
        if ":" in device and int(device.split(":")[1]) >= n:
            raise BendlabValueError(f"device {device!r} does not exist; accepted: cuda:0..cuda:{n - 1}")
    if device == "mps" and not torch.backends.mps.is_available():
        raise BendlabValueError("device 'mps' asked for but no Apple GPU is available; accepted: 'cpu'")
    return device


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_threads(threads) -> int | None:
    """None (torch's choice) or a number of CPU threads in 1..the CPUs this process may use."""
    n = available_cpus()
    if threads is not None and (not is_int(threads) or not 1 <= threads <= n):
        raise BendlabValueError(f"threads {threads!r} is outside 1..{n}; accepted: 1 to the {n} CPUs this process may "
                                "use")
    return threads


