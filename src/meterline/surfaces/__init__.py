"""Client-facing API surfaces: wire format in, internal types through the pipeline, wire out."""

from meterline.surfaces.openai import OpenAISurface

__all__ = ["OpenAISurface"]
