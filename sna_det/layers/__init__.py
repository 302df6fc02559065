from .spectral_norm_attention import (
    MODES,
    WEIGHTINGS,
    PowerIterationResult,
    SpectralNormAttention,
    dominant_singular_triple,
    low_rank_approximation,
)

__all__ = [
    "MODES",
    "WEIGHTINGS",
    "PowerIterationResult",
    "SpectralNormAttention",
    "dominant_singular_triple",
    "low_rank_approximation",
]
