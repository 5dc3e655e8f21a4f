"""Routing decisions: classification, the ``auto`` policy, success signals, fallbacks,
experiments and feedback."""

from meterline.routing.classifier import Classification, TaskType, classify, complexity_band
from meterline.routing.downgrade import cheaper_models, supports

__all__ = [
    "Classification",
    "TaskType",
    "cheaper_models",
    "classify",
    "complexity_band",
    "supports",
]
