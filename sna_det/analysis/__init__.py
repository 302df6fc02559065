"""Looking inside a model and its data: attention maps, spatial redundancy, power-iteration
diagnostics and training curves (the logic behind tools/visualize_attention.py,
analyze_redundancy.py, summarize_power_iteration.py and plot_training_curves.py)."""

from .attention_maps import AttentionMapRecorder, attention_placements, map_to_image, register_spatial_map
from .power_iteration_stats import summarize_power_iteration

__all__ = [
    "AttentionMapRecorder",
    "attention_placements",
    "map_to_image",
    "register_spatial_map",
    "summarize_power_iteration",
]
