"""Shared fixtures. The network is blocked for every test: nothing may be downloaded."""

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
        if self.family == socket.AF_UNIX:
            return real(self, address)
        raise NetworkBlocked(f"test tried to reach the network: {address}")

    socket.socket.connect = guard
    yield
    socket.socket.connect = real


@pytest.fixture(scope="session")
def pipe():
    """The shipped model (or BENDLAB_TEST_MODEL), loaded once, on the CPU in float32."""
    from bendlab import load_pipeline
    return load_pipeline(os.environ.get("BENDLAB_TEST_MODEL"), device="cpu")
