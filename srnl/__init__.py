"""srnl: image super-resolution and denoising with weight-normalised non-local attention."""
from .api import denoise, upscale
from .errors import SrnlError
from .models.config import ModelConfig
from .models.network import build_model
from .models.registry import PRETRAINED, load_model

__all__ = ["upscale", "denoise", "load_model", "build_model", "ModelConfig", "PRETRAINED",
           "SrnlError"]
__version__ = "0.1.0"
