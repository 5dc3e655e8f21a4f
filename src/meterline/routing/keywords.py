"""The vocabulary the request classifier reads: keywords, names and their meanings.

Everything here is data except :func:`_trie`, which turns the word list into one regular expression
(a trie of alternatives, so the regex engine rejects most positions after one character). All words
are lower case; a word may carry several meanings (``"sql"`` is a language and a data domain).

A meaning is ``(kind, value, weight)`` where kind is one of ``task``, ``ask`` (an explain-style
question that only counts next to code), ``hard``, ``easy``, ``lang``, ``stack``, ``domain`` or
``ref`` (the prompt talks about code).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "CODE_LINE_RE",
    "DEFINE_RE",
    "EXTENSIONS",
    "EXT_RE",
    "FENCE_STACKS",
    "FENCE_TAGS",
    "HOWTO_RE",
    "STACK_DOMAIN",
    "STACK_LANGUAGE",
    "SYNTAX_RE",
    "TRACE_RE",
    "VOCAB",
    "WORDS_RE",
]

Meaning = tuple[str, str, int]

# Task keywords with weights: 3 = names the task outright, 2 = asks for it, 1 = hints at it. Ties
# go to the task listed first. Inflections are matched for free (bug → bugs, crash → crashed).
TASKS: Mapping[str, Mapping[str, int]] = {
    "debug": {
        "traceback": 3, "stack trace": 3, "stacktrace": 3, "segfault": 3, "bug": 2, "buggy": 2,
        "crash": 2, "broken": 2, "fail": 2, "failing": 2, "doesn't work": 2, "does not work": 2,
        "not working": 2, "isn't working": 2, "won't work": 2, "stopped working": 2, "fix": 2,
        "debug": 2, "throw": 2, "panic": 2, "won't compile": 2, "doesn't compile": 2,
        "not rendering": 2, "doesn't render": 2, "infinite loop": 2, "memory leak": 2, "hang": 1,
        "deadlock": 1, "wrong": 1, "unexpected": 1, "warning": 1, "fehler": 2, "erreur": 2,
        "why doesn't": 2, "why isn't": 2, "why won't": 2, "no funciona": 2, "ne marche pas": 2,
        "funktioniert nicht": 2,
    },
    "code_review": {
        "review": 3, "code review": 3, "look over": 3, "any issues with": 2, "critique": 2,
        "anything wrong with": 2, "is this code": 2, "is this correct": 2, "is this idiomatic": 2,
        "feedback on": 2, "audit": 2, "code smell": 2, "lgtm": 2, "best practices": 1,
        "revisa": 2, "überprüfe": 2,
    },
    "refactor": {
        "refactor": 2, "clean up": 2, "cleanup": 2, "simplify": 2, "rename": 2, "extract": 2,
        "restructure": 2, "reorganize": 2, "modernize": 2, "deduplicate": 2, "more readable": 2,
        "more idiomatic": 2, "split this": 1, "tidy": 1, "speed up": 1, "make it faster": 1,
        "refactoriza": 2, "umgestalten": 2,
    },
    "explain": {
        "explain": 2, "explanation": 2, "walk me through": 2, "help me understand": 2,
        "meaning of": 1, "describe": 1, "eli5": 2, "explica": 2, "explique": 2, "erkläre": 2,
    },
    "code_gen": {
        "write": 2, "implement": 2, "create": 2, "generate": 2, "build": 1, "scaffold": 2,
        "add a feature": 2, "add support for": 2, "add": 1, "convert": 2, "code for": 2,
        "a function that": 2, "a script that": 2, "a class that": 2, "escribe": 2, "schreibe": 2,
        "écris": 2, "genera": 2, "crea": 2,
    },
}  # fmt: skip

# Explain-style questions: they count for "explain" only when the prompt holds code.
ASKS = ("what does", "how does", "why does", "what is this", "how do these", "what happens")

HARD = (
    "architecture", "distributed", "concurrency", "concurrent", "race condition", "optimize",
    "optimise", "optimization", "performance", "security", "migrate", "migration", "design",
    "scale", "scaling", "scalable", "thread-safe", "consistency", "fault-tolerant", "algorithm",
)  # fmt: skip
EASY = ("simple", "quick", "quickly", "one-liner", "typo", "trivial", "briefly", "tiny")

CODE_REFS = (
    "code", "snippet", "function", "method", "class", "script", "module", "pr", "pull request",
    "diff", "patch", "implementation", "query", "regex",
)  # fmt: skip

LANGUAGES: Mapping[str, str] = {
    "python": "python", "typescript": "typescript", "javascript": "javascript", "golang": "go",
    "rust": "rust", "java": "java", "c++": "cpp", "cpp": "cpp", "c#": "csharp",
    "csharp": "csharp", "ruby": "ruby", "php": "php", "sql": "sql", "postgres": "sql",
    "postgresql": "sql", "mysql": "sql", "sqlite": "sql", "bash": "bash", "shell": "bash",
    "kotlin": "kotlin", "swift": "swift", "scala": "scala", "elixir": "elixir",
    "haskell": "haskell", "lua": "lua", "dart": "dart", "node.js": "javascript",
    "nodejs": "javascript",
}  # fmt: skip

# Frameworks and tools, most specific first (the first of equally frequent ones wins).
STACKS: Mapping[str, str] = {
    "next.js": "nextjs", "nextjs": "nextjs", "nestjs": "nestjs", "django": "django",
    "fastapi": "fastapi", "flask": "flask", "spring boot": "spring", "springframework": "spring",
    "rails": "rails", "activerecord": "rails", "laravel": "laravel", "react": "react",
    "vue": "vue", "svelte": "svelte", "angular": "angular", "express": "express",
    "pytorch": "pytorch", "torch": "pytorch", "tensorflow": "tensorflow", "keras": "tensorflow",
    "pandas": "pandas", "numpy": "numpy", "sqlalchemy": "sqlalchemy", "kubernetes": "kubernetes",
    "kubectl": "kubernetes", "k8s": "kubernetes", "helm": "kubernetes",
    "terraform": "terraform", "docker": "docker", "dockerfile": "docker", "flutter": "flutter",
    "swiftui": "swiftui", "tokio": "tokio", "actix": "actix", "axum": "axum", "gin": "gin",
}  # fmt: skip
STACK_LANGUAGE: Mapping[str, str] = {
    "django": "python", "fastapi": "python", "flask": "python", "pytorch": "python",
    "tensorflow": "python", "pandas": "python", "numpy": "python", "sqlalchemy": "python",
    "spring": "java", "rails": "ruby", "laravel": "php", "nestjs": "typescript",
    "react": "javascript", "vue": "javascript", "svelte": "javascript", "express": "javascript",
    "nextjs": "javascript", "angular": "typescript", "flutter": "dart", "swiftui": "swift",
    "tokio": "rust", "actix": "rust", "axum": "rust", "gin": "go",
}  # fmt: skip
# Stacks not listed here are web frameworks.
STACK_DOMAIN: Mapping[str, str] = {
    "pytorch": "ml", "tensorflow": "ml", "pandas": "data", "numpy": "data", "sqlalchemy": "data",
    "kubernetes": "infra", "terraform": "infra", "docker": "infra", "flutter": "mobile",
    "swiftui": "mobile",
}  # fmt: skip

# Domain words; ties go to the first domain listed here.
DOMAINS: Mapping[str, tuple[str, ...]] = {
    "security": ("xss", "csrf", "sql injection", "vulnerability", "vulnerabilities", "exploit",
                 "cve", "owasp", "encryption", "oauth", "jwt", "authentication", "secrets"),
    "ml": ("machine learning", "neural network", "training", "embeddings", "fine-tune",
           "transformer", "llm", "gradient", "inference", "classifier"),
    "infra": ("deploy", "deployment", "ci/cd", "pipeline", "aws", "gcp", "azure", "nginx",
              "ansible", "load balancer", "devops", "container"),
    "data": ("dataframe", "etl", "sql", "query", "database", "spark", "csv", "warehouse",
             "analytics", "schema"),
    "mobile": ("android", "ios", "iphone", "mobile app", "xcode"),
    "web": ("html", "css", "frontend", "backend", "http", "rest api", "endpoint", "browser",
            "website", "web app", "dom", "graphql"),
}  # fmt: skip

FENCE_TAGS: Mapping[str, str] = {
    "py": "python", "python": "python", "python3": "python", "ts": "typescript",
    "typescript": "typescript", "tsx": "typescript", "js": "javascript", "javascript": "javascript",
    "jsx": "javascript", "node": "javascript", "go": "go", "golang": "go", "rs": "rust",
    "rust": "rust", "java": "java", "c": "c", "h": "c", "cpp": "cpp", "c++": "cpp", "cc": "cpp",
    "hpp": "cpp", "cs": "csharp", "csharp": "csharp", "c#": "csharp", "rb": "ruby", "ruby": "ruby",
    "php": "php", "sql": "sql", "postgresql": "sql", "mysql": "sql", "sh": "bash", "bash": "bash",
    "shell": "bash", "zsh": "bash", "console": "bash", "kt": "kotlin", "kotlin": "kotlin",
    "swift": "swift", "scala": "scala", "dart": "dart", "lua": "lua", "hcl": "hcl",
    "terraform": "hcl",
}  # fmt: skip
FENCE_STACKS: Mapping[str, str] = {
    "dockerfile": "docker", "hcl": "terraform", "terraform": "terraform", "tsx": "react",
    "jsx": "react", "vue": "vue", "svelte": "svelte",
}  # fmt: skip
EXTENSIONS: Mapping[str, str] = {
    "py": "python", "pyi": "python", "ts": "typescript", "tsx": "typescript", "js": "javascript",
    "jsx": "javascript", "mjs": "javascript", "go": "go", "rs": "rust", "java": "java", "c": "c",
    "h": "c", "cpp": "cpp", "cc": "cpp", "hpp": "cpp", "cs": "csharp", "rb": "ruby", "php": "php",
    "sql": "sql", "sh": "bash", "kt": "kotlin", "swift": "swift", "scala": "scala", "dart": "dart",
    "tf": "hcl",
}  # fmt: skip

# Tell-tale lines of code, tried only when nothing else names the language (first group wins).
_SYNTAX = {
    "python": r"^\s*(?:def \w+\(.*\):|from [\w.]+ import|import \w+$|elif |print\()",
    "go": r"^(?:package \w+$|func )|:= ",
    "rust": r"\bfn \w+\(|\blet mut |\bimpl\b|println!",
    "java": r"\bpublic (?:static |final )*(?:class|void|int)\b|system\.out",
    "cpp": r"#include <(?:iostream|vector|string|memory)>|\bstd::",
    "c": r"#include <\w+\.h>|\bprintf\(|\bmalloc\(",
    "typescript": r":\s*(?:string|number|boolean)\b|\binterface \w+ \{",
    "javascript": r"\bconsole\.log|\bconst \w+ = |=> \{|\bfunction \w+\(",
    "sql": r"(?i:^\s*(?:select\b.*\bfrom|insert into|update \w+ set|create table))",
    "bash": r"^#!/bin/(?:ba)?sh|^\s*(?:sudo|apt-get|echo|export) ",
}  # fmt: skip
SYNTAX_RE = re.compile("|".join(f"(?P<{k}>{v})" for k, v in _SYNTAX.items()), re.M)

# A pasted stack trace or compiler error (matched on lower-cased text).
TRACE_RE = re.compile(
    r"traceback \(most recent call last\)|exception in thread|panicked at|goroutine \d+ \["
    r"|segmentation fault|core dumped|npm err!|uncaught \w+|^\s+at [\w.$<>]+ ?\("
    r"|^\s+file \"[^\"]+\", line \d+|^[\w.]*(?:error|exception)(?:\[\w+\])?: |: error(?: ts\d+)?:",
    re.M,
)
EXT_RE = re.compile(r"(?<=\w)\.(" + "|".join(sorted(EXTENSIONS, key=len, reverse=True)) + r")\b")
# Short questions that want a fact, not work: "what is …", "how do I …" (matched at the start).
DEFINE_RE = re.compile(r"(?:what is|what are|what's|who|when|where|which|define)\b")
HOWTO_RE = re.compile(r"(?:how do i|how can i|how to|how do you|is it possible|is there)\b")
# Lines of code pasted without a fence.
CODE_LINE_RE = re.compile(
    r"(?:[;{}]|\):|=>)[ \t]*$|^(?: {4}|\t)\S|^(?:import|export|def|fn|func|const|let|#include) ",
    re.M,
)


def _vocabulary() -> dict[str, tuple[Meaning, ...]]:
    table: dict[str, list[Meaning]] = {}

    def add(words: Iterable[str], kind: str, value: str, weight: int = 1) -> None:
        for word in words:
            table.setdefault(word, []).append((kind, value, weight))

    for task, weights in TASKS.items():
        for word, weight in weights.items():
            add([word], "task", task, weight)
    add(ASKS, "ask", "explain")
    for word in HARD:
        add([word], "hard", word)
    for word in EASY:
        add([word], "easy", word)
    add(CODE_REFS, "ref", "code")
    for word, language in LANGUAGES.items():
        add([word], "lang", language)
    for word, stack in STACKS.items():
        add([word], "stack", stack)
    for domain, words in DOMAINS.items():
        add(words, "domain", domain)
    return {word: tuple(meanings) for word, meanings in table.items()}


_Node = dict[str, "_Node"]


def _trie(words: Iterable[str]) -> str:
    root: _Node = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: _Node) -> str:
        alternatives = [re.escape(c) + pattern(child) for c, child in sorted(node.items()) if c]
        if not alternatives:
            return ""
        body = "(?:" + "|".join(alternatives) + ")" if len(alternatives) > 1 else alternatives[0]
        return f"(?:{body})?" if "" in node else body

    return pattern(root)


VOCAB = _vocabulary()
# A vocabulary word, whole, optionally inflected (bug → bugs, design → designed, fail → failing).
WORDS_RE = re.compile(r"(?<![\w])(" + _trie(VOCAB) + r")(?:s|es|ed|d|ing)?(?![\w])")
