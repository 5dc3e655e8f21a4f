"""The admin REST API (``/api/*``) and ``/health``."""

from meterline.admin.api import AdminAPI

__all__ = ["AdminAPI"]
