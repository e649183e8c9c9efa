"""Degradations: the field's protocols (clean bicubic LR, seeded unclipped Gaussian noise) and the
seeded chain that makes inputs look like real files (blur, resampling, noise, JPEG, 8 bits).

Names resolve on first use (PEP 562): `Degradation` and the presets (`spec`) need no torch, the
chain that applies them does."""
import importlib

_LAZY = {**dict.fromkeys(["Degradation", "load_preset", "preset_names"], ".spec"),
         **dict.fromkeys(["Plan", "apply_plan", "degrade", "draw_plan", "known_sigma",
                          "named_plan"], ".chain"),
         **dict.fromkeys(["add_noise", "check_sigma", "bicubic_downscale", "bicubic_resize",
                          "estimate_noise", "modcrop"], ".protocol")}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'srnl.degrade' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
