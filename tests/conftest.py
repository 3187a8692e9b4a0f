"""Shared fixtures. The network is blocked for every test (loopback excepted): nothing may be downloaded."""

import os
import socket

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
torch.set_num_threads(1)


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True, scope="session")
def no_network():
    """Any attempt to open a connection fails the test that made it."""
    real = socket.socket.connect

    def guard(self, address):
        if self.family == socket.AF_UNIX or (self.family in (socket.AF_INET, socket.AF_INET6)
                                             and str(address[0]).startswith(("127.", "::1", "localhost"))):
            return real(self, address)  # local sockets and loopback (JupyterLab for the browser test) only
        raise NetworkBlocked(f"test tried to reach the network: {address}")

    socket.socket.connect = guard
    yield
    socket.socket.connect = real


@pytest.fixture(scope="session")
def pipe():
    """The shipped model (or BENDLAB_TEST_MODEL), loaded once, on the CPU in float32."""
    from bendlab import load_pipeline
    return load_pipeline(os.environ.get("BENDLAB_TEST_MODEL"), device="cpu")
