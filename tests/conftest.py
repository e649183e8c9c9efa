import os
import sys

import numpy as np
import pytest
import torch

from srnl.models.checkpoint import model_payload, save_checkpoint
from srnl.models.config import ModelConfig
from srnl.models.network import build_model

# Tests run beside other work on 2 cores; one thread avoids oversubscription stalls.
torch.set_num_threads(1)


def tiny_config(**kw) -> ModelConfig:
    base = dict(features=8, blocks=2, nonlocal_after=(1,), nonlocal_down=2, nonlocal_pool=2,
                nonlocal_dim=4)
    return ModelConfig(**{**base, **kw})


def trained_like(model):
    """Give every weight-normalised conv (the zero-initialised attention output too) a non-zero
    random scale, as after training, so that tests exercise the whole network."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("original0"):
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
    return model


def tiny_model(**kw):
    torch.manual_seed(0)
    return trained_like(build_model(tiny_config(**kw)))


@pytest.fixture
def model_file(tmp_path):
    """A tiny x2 checkpoint on disk, as `--model FILE` takes it."""
    def make(**kw):
        path = tmp_path / f"tiny_{len(list(tmp_path.glob('tiny_*')))}.pt"
        save_checkpoint(path, model_payload(tiny_model(**kw), {"data": "test"}))
        return path
    return make


def smooth_image(h=40, w=48, seed=0, channels=3, noise=0.1) -> np.ndarray:
    """uint8 image with structure at several scales (a gradient plus blobs), made in the test."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(6 * xx + c) * np.cos(5 * yy - c) for c in range(channels)], -1)
    img = 0.5 + 0.35 * img + noise * rng.standard_normal((h, w, channels))
    out = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out[..., 0] if channels == 1 else out


@pytest.fixture
def srnl(capsys, monkeypatch):
    """Run the `srnl` command in-process; returns (exit code, stdout, stderr)."""
    from srnl.cli import main

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["srnl", *map(str, args)])
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code or 0
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out, err
    return run


class Server:
    """`srnl serve` in a process of its own, on a real socket (any free port)."""

    def __init__(self, tmp_path, *args):
        import subprocess

        # Its private folder is made under TMPDIR: the tests look into it.
        self.tmp = tmp_path
        env = {**os.environ, "TMPDIR": str(tmp_path)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from srnl.cli import main; main()", "serve", "--port", "0",
             "--threads", "1", *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        assert line.startswith("srnl serve: http://"), line + self.proc.stderr.read()
        self.url = line.split()[2].rstrip("/")

    def folders(self) -> list:
        """What is inside the server's private folder (job folders, spooled uploads)."""
        roots = list(self.tmp.glob("srnl-serve-*"))
        return [p for root in roots for p in root.iterdir()]

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
        return kb / 1024

    def stop(self) -> tuple[int, str, str]:
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for a module's tests: tiles of 64, small limits, so that tests can reach them
    with small images."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    pytest.importorskip("httpx")
    running = Server(tmp_path_factory.mktemp("serve"), "--tile", 64, "--max-pixels", 200_000,
                     "--max-upload-mb", 1)
    yield running
    running.stop()
