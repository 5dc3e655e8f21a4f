"""Routing decisions: which model answers a request."""

from meterline.routing.downgrade import cheaper_models, supports

__all__ = ["cheaper_models", "supports"]
