"""What the guard looks for in a request's text: credentials (``secrets``) and take-over
phrases (``injection``). Pure functions; the pipeline stage is ``pipeline.guard``."""

from meterline.guard.injection import find_injection
from meterline.guard.secrets import SECRET_KINDS, find_secrets, redact

__all__ = ["SECRET_KINDS", "find_injection", "find_secrets", "redact"]
