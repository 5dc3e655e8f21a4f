"""The admin REST API (``/api/*``) and ``/health``."""

from meterline.admin.api import AdminAPI
from meterline.admin.budget import BudgetAPI
from meterline.admin.experiments import ExperimentsAPI
from meterline.admin.feedback import FeedbackAPI
from meterline.admin.keys import KeysAPI
from meterline.admin.metrics import MetricsAPI
from meterline.admin.routing import RoutingAPI

__all__ = [
    "AdminAPI",
    "BudgetAPI",
    "ExperimentsAPI",
    "FeedbackAPI",
    "KeysAPI",
    "MetricsAPI",
    "RoutingAPI",
]
