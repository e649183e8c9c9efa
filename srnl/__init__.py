"""srnl: image super-resolution and denoising with weight-normalised non-local attention."""
import importlib

from .errors import SrnlError

__all__ = ["upscale", "denoise", "load_model", "build_model", "ModelConfig", "PRETRAINED",
           "SrnlError"]
__version__ = "0.1.0"

# Resolved on first use (PEP 562), so that `import srnl.errors` (the command line's start-up)
# does not pay for importing torch.
_LAZY = {"upscale": ".api", "denoise": ".api", "load_model": ".models.registry",
         "PRETRAINED": ".models.registry", "build_model": ".models.network",
         "ModelConfig": ".models.config"}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'srnl' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
