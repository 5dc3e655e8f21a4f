"""The configuration example in the README is valid, so users can start from it."""

from __future__ import annotations

from pathlib import Path

from meterline.settings import parse_config

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_config_example_parses() -> None:
    text = README.read_text(encoding="utf-8")
    start = text.index("```yaml", text.index("## Configuration file")) + len("```yaml")
    settings = parse_config(text[start : text.index("```", start)], "README.md")
    assert [p.name for p in settings.providers] == ["groq", "claude-code"]
    assert settings.aliases["gpt-4"] == "auto:premium"
    assert settings.accounting.budgets[1].subject == "acme"
