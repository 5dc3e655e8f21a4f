"""Model names as clients send them: provider-qualified, bare, aliased, dated snapshots."""

from __future__ import annotations

import pytest

from meterline.catalog import Catalog
from meterline.errors import ModelNotFound
from meterline.pipeline.route import Resolver


class _Providers:
    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def __contains__(self, name: object) -> bool:
        return name in self.names


def _resolver(*providers: str) -> Resolver:
    return Resolver(Catalog.builtin(), _Providers(*providers), {"fast": "openai:gpt-4.1-nano"})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("asked", "provider", "sent", "priced_as"),
    [
        (
            "claude-sonnet-4-5-20250929",
            "anthropic",
            "claude-sonnet-4-5-20250929",
            "claude-sonnet-4-5",
        ),
        ("gpt-4o-2024-08-06", "openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("claude-haiku-4-5", "anthropic", "claude-haiku-4-5", "claude-haiku-4-5"),
        ("fast", "openai", "gpt-4.1-nano", "gpt-4.1-nano"),
        ("openai:gpt-4o", "openai", "gpt-4o", "gpt-4o"),
    ],
)
def test_names_resolve(asked: str, provider: str, sent: str, priced_as: str) -> None:
    route = _resolver("openai", "anthropic").resolve(asked)
    assert (route.provider, route.model.name) == (provider, sent)
    catalog = Catalog.builtin().get(provider, priced_as)
    assert (
        catalog is not None and route.model.price == catalog.price
    )  # dated names keep their price


def test_unknown_and_unserved_names_are_404() -> None:
    with pytest.raises(ModelNotFound, match="does not exist"):
        _resolver("openai").resolve("no-such-model")
    with pytest.raises(ModelNotFound, match="served by anthropic, which is not configured"):
        _resolver("openai").resolve("claude-haiku-4-5")
