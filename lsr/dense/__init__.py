"""Dense cross-space retrieval: maps from one frozen encoder's space into another's (Procrustes, contrastive)."""

from lsr.dense.cosine import cosine_scores

__all__ = ["cosine_scores", "ProcrustesMap", "ContrastiveMap"]


def __getattr__(name: str):
    # Lazy, so importing `lsr.dense` does not import torch.
    if name == "ProcrustesMap":
        from lsr.dense.procrustes import ProcrustesMap

        return ProcrustesMap
    if name == "ContrastiveMap":
        from lsr.dense.contrastive import ContrastiveMap

        return ContrastiveMap
    raise AttributeError(f"module 'lsr.dense' has no attribute {name!r}")
