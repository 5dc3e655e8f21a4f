"""Simulated upstream providers speaking the real wire formats (for the demo, benchmarks, tests)."""

from meterline.sim.anthropic import ANTHROPIC_MODELS, AnthropicSim, ErrorEvent
from meterline.sim.gemini import GeminiSim
from meterline.sim.ollama import OllamaSim
from meterline.sim.openai import Fault, OpenAISim, SimSettings

__all__ = [
    "ANTHROPIC_MODELS",
    "AnthropicSim",
    "ErrorEvent",
    "Fault",
    "GeminiSim",
    "OllamaSim",
    "OpenAISim",
    "SimSettings",
]
