"""Simulated upstream providers speaking the real wire formats (for the demo, benchmarks, tests)."""

from meterline.sim.openai import Fault, OpenAISim, SimSettings

__all__ = ["Fault", "OpenAISim", "SimSettings"]
