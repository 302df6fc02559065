from .attention_factory import (
    ATTENTION_TABLE,
    ATTENTION_TYPES,
    AttentionOption,
    AttentionType,
    SpatialMap,
    create_attention,
)
from .sna_authors_code import SpectralNormAttentionAuthorsCode
from .spectral_norm_attention import (
    MODES,
    WEIGHTINGS,
    SingularTriple,
    SpectralNormAttention,
    dominant_singular_triple,
    low_rank_approximation,
    rank_one_approximation,
)

__all__ = [
    "ATTENTION_TYPES",
    "ATTENTION_TABLE",
    "AttentionOption",
    "AttentionType",
    "SpatialMap",
    "create_attention",
    "MODES",
    "WEIGHTINGS",
    "SingularTriple",
    "SpectralNormAttention",
    "SpectralNormAttentionAuthorsCode",
    "dominant_singular_triple",
    "low_rank_approximation",
    "rank_one_approximation",
]
