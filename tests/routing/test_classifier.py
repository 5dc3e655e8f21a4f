"""The heuristic classifier: task types, language/stack/domain, complexity and its bounds."""

from __future__ import annotations

import random

import pytest

from meterline.routing.classifier import Classification, classify, complexity_band
from meterline.types import ChatRequest, Message, TextPart, Tool, ToolResultPart

PY_TRACE = """Traceback (most recent call last):
  File "app.py", line 3, in <module>
    main()
KeyError: 'id'"""
JS_SNIPPET = "```js\nconst user = undefined;\nuser.name.trim();\n```"
PY_SNIPPET = "```python\ndef total(items):\n    return sum(i.price for i in items)\n```"
GO_SNIPPET = "```go\nfunc Add(a, b int) int {\n\treturn a - b\n}\n```"


def request(text: str, *, system: str = "", turns: int = 1, tools: int = 0) -> ChatRequest:
    messages: list[Message] = []
    if system:
        messages.append(Message("system", (TextPart(system),)))
    for _ in range(turns - 1):
        messages.append(Message("user", (TextPart("Earlier question about the same code."),)))
        messages.append(Message("assistant", (TextPart("An earlier answer."),)))
    messages.append(Message("user", (TextPart(text),)))
    return ChatRequest("auto", tuple(messages), tools=tuple(Tool(f"t{i}") for i in range(tools)))


def classified(text: str, **kwargs: int | str) -> Classification:
    return classify(request(text, **kwargs))  # type: ignore[arg-type]


CASES = {
    "simple_qa": [
        "What is the capital of France?",
        "How do I reverse a list in Python?",
        "What does HTTP stand for?",
        "Why is the sky blue?",
        "What is a segfault?",
    ],
    "debug": [
        f"I get this error:\n```\n{PY_TRACE}\n```\nWhy does this happen?",
        f"Why does this code throw a TypeError?\n{JS_SNIPPET}",  # code + "why does": still debug
        f"Explain this error please:\n```\n{PY_TRACE}\n```",  # "explain" loses to a trace
        "My kubectl apply fails with: error: unable to recognize deployment.yaml",
        f"This function doesn't work, it returns the wrong total:\n{PY_SNIPPET}",
        'Exception in thread "main" java.lang.NullPointerException\n\tat com.acme.App.run(App.java:12)',
        "Why does my script crash when I run it?",
    ],
    "code_review": [
        f"Please review this code:\n{PY_SNIPPET}",
        f"Can you review this function for bugs?\n{GO_SNIPPET}",  # review, not debug
        f"Is this code thread-safe?\n{GO_SNIPPET}",
        "Review this PR, it adds a new endpoint:\n```diff\n+ @app.get('/health')\n+ def health(): ...\n```",
        f"Any issues with this implementation?\n{PY_SNIPPET}",
    ],
    "refactor": [
        "Refactor this to be more readable:\n```ts\nfunction f(a:any){if(a){return 1}else{return 2}}\n```",
        f"Clean up this function and extract the sum into a helper:\n{PY_SNIPPET}",
        f"Rename the variables in this snippet so they say what they hold:\n{JS_SNIPPET}",
        f"Simplify this:\n{GO_SNIPPET}",
    ],
    "explain": [
        "Explain what this does:\n```rust\nfn main() { let v: Vec<_> = (0..10).collect(); }\n```",
        f"What does this function do?\n{PY_SNIPPET}",
        "Walk me through this query:\n```sql\nSELECT a, count(*) FROM t GROUP BY a;\n```",
        "Explain how garbage collection works in the JVM, in detail, with the generations.",
    ],
    "code_gen": [
        "Write a Python function that parses ISO dates with good error handling.",
        "Implement a React component for a login form.",
        "Create a script that backs up my postgres database to S3 every night.",
        "Generate a Dockerfile for a FastAPI app.",
        f"Add a feature to this: it should also apply a discount.\n{PY_SNIPPET}",
    ],
    "other": [
        "Translate this paragraph into French: the weather is lovely and we walked for hours.",
        "Summarize the following meeting notes for me: we agreed on the budget and the dates.",
        "Write a haiku about autumn leaves.",  # "write" without anything technical
        "Simplify this sentence: the committee has reached a decision at this point in time.",
    ],
}


@pytest.mark.parametrize(
    ("expected", "text"), [(task, text) for task, texts in CASES.items() for text in texts]
)
def test_task_type(expected: str, text: str) -> None:
    result = classified(text)
    assert result.task_type == expected, result.signals


def test_debug_signals_name_the_trace_and_keywords() -> None:
    result = classified(f"I get this error:\n```\n{PY_TRACE}\n```")
    assert "stack_trace" in result.signals
    assert "keyword:error" in result.signals
    assert "code_blocks:1" in result.signals
    assert any(s.startswith("tokens:~") for s in result.signals)


def test_every_classification_carries_signals() -> None:
    for texts in CASES.values():
        for text in texts:
            assert classified(text).signals


@pytest.mark.parametrize(
    ("text", "language"),
    [
        (PY_SNIPPET, "python"),
        (GO_SNIPPET, "go"),
        ("```tsx\nexport const A = () => <div/>;\n```", "typescript"),
        ("```c++\nint main() {}\n```", "cpp"),
        ("The borrow checker rejects line 12 of src/foo.rs, why?", "rust"),
        ("My build.gradle.kts pulls in Main.kt and it fails", "kotlin"),
        ("How do I read a file in golang?", "go"),
        ("Convert this bash loop to something faster", "bash"),
        ("from django.db import models\nclass A(models.Model):\n    pass\n", "python"),
        ("```\nfn main() {\n    let mut v = Vec::new();\n}\n```", "rust"),  # syntax only
        ("What is the capital of France?", None),
    ],
)
def test_language(text: str, language: str | None) -> None:
    result = classified(text)
    assert result.language == language, result.signals


@pytest.mark.parametrize(
    ("text", "stack", "domain"),
    [
        (
            "import React from 'react'\nexport default function App() { return <div/> }",
            "react",
            "web",
        ),
        ("```python\nfrom django.db import models\n```\nadd a field", "django", "web"),
        ("```python\nimport torch\nmodel = torch.nn.Linear(2, 1)\n```", "pytorch", "ml"),
        ("Our kubectl rollout hangs on the new deployment", "kubernetes", "infra"),
        ('```hcl\nresource "aws_s3_bucket" "b" {}\n```', "terraform", "infra"),
        ("A Next.js page that uses React hooks", "nextjs", "web"),
        ("Fix this SQL injection in my query handler", None, "security"),
        ("Load this CSV into a dataframe and group by day", None, "data"),
        ("Write a SwiftUI view for the settings screen", "swiftui", "mobile"),
        ("Tell me a joke", None, None),
    ],
)
def test_stack_and_domain(text: str, stack: str | None, domain: str | None) -> None:
    result = classified(text)
    assert (result.stack, result.domain) == (stack, domain), result.signals


def test_stack_implies_language_and_says_so() -> None:
    result = classified("Implement a FastAPI endpoint for uploads")
    assert (result.stack, result.language) == ("fastapi", "python")
    assert "language:python(stack)" in result.signals
    assert "stack:fastapi" in result.signals


def test_difficulty_keywords_move_complexity() -> None:
    base = "Write a rate limiter for our service."
    hard = "Design a distributed rate limiter for our service that scales; avoid race conditions."
    easy = "Write a quick, simple rate limiter for our service."
    assert classified(hard).complexity > classified(base).complexity > classified(easy).complexity
    assert "hard:distributed" in classified(hard).signals
    assert "easy:quick" in classified(easy).signals


def test_turns_system_prompt_and_tools_raise_complexity() -> None:
    text = f"Please review this code:\n{PY_SNIPPET}"
    plain = classified(text).complexity
    assert classified(text, turns=4).complexity > plain
    assert classified(text, system="You are a meticulous reviewer. " * 40).complexity > plain
    assert classified(text, tools=3).complexity > plain
    assert "tools:3" in classified(text, tools=3).signals


def test_tool_results_count_towards_size() -> None:
    tool_msg = Message("tool", (ToolResultPart("call_1", (TextPart("row\n" * 2000),)),))
    small = ChatRequest("auto", (Message("user", (TextPart("Summarize the rows."),)),))
    large = ChatRequest("auto", (small.messages[0], tool_msg))
    assert classify(large).complexity > classify(small).complexity
    assert classify(large).task_type == classify(small).task_type


def _grown(rng: random.Random) -> tuple[str, str]:
    """A prompt and the same prompt with more neutral text or more code."""
    words = ["alpha", "beta", "gamma", "delta", "widget", "report", "value", "number", "table"]
    intro = rng.choice(
        ["Review this:", "Why does this fail?", "Explain this:", "Tell me about", ""]
    )
    keyword = rng.choice(["", " Keep it simple.", " Think about concurrency.", " quick one"])
    filler = " ".join(rng.choice(words) for _ in range(rng.randrange(0, 400)))
    shapes = [
        "x{i} = compute({i})",
        "def f{i}(self):\n    return {i};",
        "const v{i} = await f({i});",
    ]
    lines = [rng.choice(shapes).format(i=i) for i in range(rng.randrange(0, 60))]
    fenced = rng.random() < 0.5

    def build(filler: str, lines: list[str], extra_block: bool) -> str:
        code = "\n".join(lines)
        text = f"{intro} {filler}{keyword}\n" + (f"```python\n{code}\n```\n" if fenced else "")
        return text + ("```\nmore = 1\n```\n" if extra_block else "")

    more_filler = filler + " " + " ".join(rng.choice(words) for _ in range(rng.randrange(1, 300)))
    more_lines = lines + [rng.choice(shapes).format(i=i) for i in range(rng.randrange(1, 40))]
    grow = rng.choice(["filler", "lines", "block"])
    before = build(filler, lines, extra_block=False)
    after = build(
        more_filler if grow == "filler" else filler,
        more_lines if grow == "lines" else lines,
        extra_block=grow == "block",
    )
    return before, after


def test_complexity_never_drops_when_the_prompt_grows() -> None:
    rng = random.Random(20240501)
    for _ in range(400):
        before, after = _grown(rng)
        turns = rng.randrange(1, 4)
        small, large = classified(before, turns=turns), classified(after, turns=turns)
        assert large.complexity >= small.complexity, (before, after)


def test_complexity_is_bounded() -> None:
    rng = random.Random(7)
    texts = ["", "hi", "quick simple typo one-liner trivial tiny", "x" * 200_000]
    texts.append(" ".join(["architecture distributed concurrency security scale design"] * 50))
    texts += [
        "".join(rng.choice("ab c\n`{};") for _ in range(rng.randrange(0, 5000))) for _ in range(50)
    ]
    for text in texts:
        for turns, tools in ((1, 0), (30, 20)):
            assert 0 <= classified(text, turns=turns, tools=tools, system=text).complexity <= 100
    hard = "Design the architecture of a distributed system with safe concurrency. "
    huge = classified(hard + "```\ncode\n```\n" * 200, turns=30, tools=20)
    assert huge.complexity == 100
    assert classified("typo").complexity <= 5


def test_no_user_message_is_other() -> None:
    result = classify(ChatRequest("auto", (Message("system", (TextPart("Be brief."),)),)))
    assert result.task_type == "other"
    assert 0 <= result.complexity <= 100


@pytest.mark.parametrize(
    ("complexity", "band"),
    [(0, "low"), (33, "low"), (34, "medium"), (66, "medium"), (67, "high"), (100, "high")],
)
def test_complexity_band(complexity: int, band: str) -> None:
    assert complexity_band(complexity) == band


def test_bands_of_typical_prompts() -> None:
    assert complexity_band(classified("What is the capital of France?").complexity) == "low"
    big = "Design the architecture for migrating our distributed billing service.\n"
    big += "```python\n" + "def handler(event):\n    return process(event)\n" * 150 + "```\n"
    assert complexity_band(classified(big, turns=3, tools=2).complexity) == "high"
