"""The request pipeline: a context, the stages, and the runner."""

from meterline.pipeline.context import Outcome, RequestContext, Route, new_request_id
from meterline.pipeline.pipeline import Pipeline, Reply, Stage

__all__ = ["Outcome", "Pipeline", "Reply", "RequestContext", "Route", "Stage", "new_request_id"]
