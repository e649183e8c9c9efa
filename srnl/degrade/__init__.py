"""Degradations: the field's protocols (clean bicubic LR, seeded unclipped Gaussian noise) and the
seeded chain that makes inputs look like real files (blur, resampling, noise, JPEG, 8 bits)."""
from .chain import (Degradation, Plan, apply_plan, degrade, draw_plan, known_sigma, load_preset,
                    named_plan, preset_names)
from .protocol import (add_noise, bicubic_downscale, bicubic_resize, check_sigma, estimate_noise,
                       modcrop)

__all__ = ["Degradation", "Plan", "apply_plan", "degrade", "draw_plan", "known_sigma", "load_preset",
           "named_plan", "preset_names", "add_noise", "check_sigma", "bicubic_downscale", "bicubic_resize",
           "estimate_noise", "modcrop"]
