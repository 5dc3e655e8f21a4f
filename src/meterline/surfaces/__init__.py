"""Client-facing API surfaces: wire format in, internal types through the pipeline, wire out."""

from meterline.surfaces.anthropic import AnthropicSurface
from meterline.surfaces.base import Surface
from meterline.surfaces.openai import OpenAISurface

__all__ = ["AnthropicSurface", "OpenAISurface", "Surface"]
