"""``/api/experiments``: create, list (with per-arm success, cost, latency and significance)
and stop A/B experiments. Creating and stopping need the master key."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from meterline.admin.access import Access
from meterline.admin.http import answers_errors, json_body
from meterline.errors import GatewayError, InvalidRequest, ModelNotFound
from meterline.surfaces.http import json_response

if TYPE_CHECKING:
    from meterline.gateway import Gateway
    from meterline.routing.experiments import Experiments

__all__ = ["ExperimentsAPI"]


class ExperimentsAPI:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.access = Access(gateway)

    def routes(self) -> list[Route]:
        return [
            Route("/api/experiments", self.create, methods=["POST"]),
            Route("/api/experiments", self.list, methods=["GET"]),
            Route("/api/experiments/{experiment_id}", self.stop, methods=["DELETE"]),
        ]

    @property
    def experiments(self) -> Experiments:
        assert self.gateway.experiments is not None, "the gateway has not been started"
        return self.gateway.experiments

    def _check_model(self, name: str, field: str) -> None:
        stage = self.gateway.route_stage
        assert stage is not None
        try:
            stage.resolver.resolve(name)
        except GatewayError:
            raise InvalidRequest(
                f"'{field}' must name a served model: {name!r}", param=field
            ) from None

    @answers_errors
    async def create(self, request: Request) -> Response:
        await self.access.admin(request)
        body = await json_body(request)
        match, baseline, challenger = (
            body.get("match"),
            body.get("baseline"),
            body.get("challenger"),
        )
        weight = body.get("weight", 0.5)
        for field, value in (("match", match), ("baseline", baseline), ("challenger", challenger)):
            if not isinstance(value, str) or not value:
                raise InvalidRequest(f"'{field}' must be a non-empty string", param=field)
        if not isinstance(weight, int | float) or not 0 < weight < 1:
            raise InvalidRequest(
                "'weight' (the challenger's share) must be in (0, 1)", param="weight"
            )
        assert isinstance(baseline, str) and isinstance(challenger, str) and isinstance(match, str)
        self._check_model(baseline, "baseline")
        self._check_model(challenger, "challenger")
        created = await self.experiments.create(match, baseline, challenger, float(weight),
                                                bool(body.get("auto_promote", False)))  # fmt: skip
        return json_response(await self.experiments.report(created), 201)

    @answers_errors
    async def list(self, request: Request) -> Response:
        await self.access.caller(request)
        reports = [await self.experiments.report(e) for e in await self.experiments.all()]
        return json_response({"data": reports})

    @answers_errors
    async def stop(self, request: Request) -> Response:
        await self.access.admin(request)
        experiment_id = request.path_params["experiment_id"]
        if not await self.experiments.set_status(experiment_id, "stopped"):
            raise ModelNotFound(f"no experiment '{experiment_id}'", code="experiment_not_found")
        return json_response({"id": experiment_id, "status": "stopped"})
