"""The admin REST API (``/api/*``) and ``/health``."""

from meterline.admin.api import AdminAPI
from meterline.admin.budget import BudgetAPI
from meterline.admin.keys import KeysAPI

__all__ = ["AdminAPI", "BudgetAPI", "KeysAPI"]
