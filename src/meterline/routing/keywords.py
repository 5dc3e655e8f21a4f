"""The vocabulary the request classifier reads: keywords, names and their meanings.

Words are matched as sets, not with one regex per keyword: the classifier splits the normalized
text (lower case, punctuation → spaces) once and intersects it with :data:`WORDS`; a phrase is
checked with a substring test only when its longest word is present (:data:`ANCHORS`). A word may
carry several meanings (``"sql"`` is a language and a data domain).

A meaning is ``(kind, value, weight)`` where kind is one of ``task``, ``ask`` (a task word that
counts only when the prompt is about code), ``hard``, ``easy``, ``lang``, ``stack``, ``domain``,
``trace`` (a pasted stack trace), ``syntax`` (a word only code has) or ``ref`` (the prompt talks
about code).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "ANCHORS",
    "ASKS",
    "CODE_KINDS",
    "CODE_LINE_MARKERS",
    "CODE_REFS",
    "CODE_WORDS",
    "DEFINE_RE",
    "DOMAINS",
    "DOMAIN_WEIGHTS",
    "EASY",
    "ERROR_LINES",
    "EXTENSIONS",
    "EXT_RE",
    "FENCE_STACKS",
    "FENCE_TAGS",
    "HARD",
    "HOWTO_RE",
    "LANGUAGES",
    "STACKS",
    "STACK_DOMAIN",
    "STACK_LANGUAGE",
    "SYNTAX",
    "SYNTAX_WORDS",
    "TASKS",
    "TRACES",
    "TRACE_FRAMES",
    "VOCAB",
    "WORDS",
    "normalize",
]

Meaning = tuple[str, str, int]

# Task keywords with weights: 3 = names the task outright, 2 = asks for it, 1 = hints at it. Ties
# go to the task listed first. Inflections are matched for free (bug → bugs, crash → crashed).
TASKS: Mapping[str, Mapping[str, int]] = {
    "debug": {
        "stack trace": 3, "segfault": 2, "uncaught": 1, "unhandled": 1, "bug": 2, "buggy": 2,
        "crash": 2, "broken": 2, "fail": 2, "failing": 2, "doesn't work": 2, "does not work": 2,
        "not working": 2, "isn't working": 2, "won't work": 2, "stopped working": 2, "fix": 2,
        "debug": 2, "throw": 2, "panic": 2, "won't compile": 2, "doesn't compile": 2,
        "not rendering": 2, "doesn't render": 2, "infinite loop": 2, "memory leak": 2, "hang": 1,
        "deadlock": 1, "wrong": 1, "unexpected": 1, "warning": 1, "fehler": 2, "erreur": 2,
        "why doesn't": 2, "why isn't": 2, "why won't": 2, "blank page": 2, "blank screen": 2,
        "works locally": 2, "locally it works": 2, "but got": 2, "expected": 1, "instead of": 1,
        "exit code": 1, "why am i getting": 2, "oom": 2, "killed": 1, "keeps": 1,
        "no funciona": 2, "ne marche pas": 2, "funktioniert nicht": 2,
    },
    "code_review": {
        "review": 3, "code review": 3, "look over": 3, "any issues with": 2, "critique": 2,
        "any problems with": 2, "anything wrong with": 2, "could go wrong": 2, "approve": 2,
        "is this code": 2, "is this correct": 2, "is this idiomatic": 2, "is this a good": 2,
        "is this the right way": 2, "feedback on": 2, "audit": 2, "code smell": 2, "lgtm": 2,
        "best practices": 1, "revisa": 2, "überprüfe": 2,
    },
    "refactor": {
        "refactor": 2, "restructure": 2, "reorganize": 2, "modernize": 2, "deduplicate": 2,
        "more readable": 2, "more idiomatic": 2, "more pythonic": 2, "more efficient": 2,
        "more concise": 2, "cleaner": 2, "refactoriza": 2, "umgestalten": 2,
    },
    "explain": {
        "explain": 2, "explanation": 2, "walk me through": 2, "help me understand": 2,
        "meaning of": 1, "describe": 1, "eli5": 2, "explica": 2, "explique": 2, "erkläre": 2,
    },
    "code_gen": {
        "implement": 3, "scaffold": 2, "add a feature": 2, "add support for": 2, "code for": 2,
        "function that": 2, "script that": 2, "class that": 2, "program that": 2, "tool that": 2,
        "component that": 2, "endpoint that": 2, "query that": 2,
    },
}  # fmt: skip

# Words that count for a task only when the prompt is about code (holds code, names a file, a
# language, a framework or a technical term): otherwise "what does …" is a plain question,
# "write" may be a poem and "simplify" a sentence.
ASKS: Mapping[str, Mapping[str, int]] = {
    "explain": {
        "what does": 1, "how does": 1, "why does": 1, "what is this": 1, "how do these": 1,
        "what happens": 1,
    },
    "refactor": {
        "clean up": 2, "clean it up": 2, "clean this up": 2, "cleanup": 2, "simplify": 2,
        "rename": 2, "extract": 2, "rewrite": 2, "split this": 2, "tidy": 1, "improve": 1,
        "speed up": 1, "make it faster": 1, "dry": 2,
    },
    "code_gen": {
        "write": 3, "create": 3, "generate": 3, "build": 1, "add": 1, "convert": 2, "make a": 2,
        "make me a": 2, "give me a": 2, "escribe": 2, "schreibe": 2, "écris": 2, "genera": 2,
        "crea": 2,
    },
}  # fmt: skip

HARD = (
    "architecture", "distributed", "concurrency", "concurrent", "race condition", "optimize",
    "optimise", "optimization", "performance", "security", "migrate", "migration", "design",
    "scale", "scaling", "scalable", "thread-safe", "consistency", "fault-tolerant", "algorithm",
)  # fmt: skip
EASY = ("simple", "quick", "quickly", "one-liner", "typo", "trivial", "briefly", "tiny")

CODE_REFS = (
    "code", "snippet", "function", "method", "class", "script", "module", "pr", "pull request",
    "diff", "patch", "implementation", "query", "regex", "variable", "unit test", "api", "cli",
    "endpoint", "component", "library", "test suite",
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

# Frameworks and tools, most specific first: of several named, the first listed wins.
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

# Domain words; ties go to the first domain listed here. A security word outweighs the incidental
# data or web words around it ("SQL injection in my query").
DOMAIN_WEIGHTS: Mapping[str, int] = {"security": 3}
DOMAINS: Mapping[str, tuple[str, ...]] = {
    "security": ("xss", "csrf", "sql injection", "vulnerability", "vulnerabilities", "exploit",
                 "cve", "owasp", "encryption", "oauth", "jwt", "authentication", "secrets"),
    "ml": ("machine learning", "neural network", "training", "embeddings", "fine-tune",
           "transformer", "llm", "gradient", "inference", "classifier"),
    "infra": ("deploy", "deployment", "ci/cd", "pipeline", "aws", "gcp", "azure", "nginx",
              "ansible", "load balancer", "devops", "container", "github actions", "gitlab ci",
              "ci"),
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

# Tell-tale code, tried in order when nothing else names the language (matched lower-cased).
SYNTAX: tuple[tuple[str, str], ...] = (
    ("<?php", "php"), ("#include <iostream>", "cpp"), ("std::", "cpp"), ("#include", "c"),
    ("fn main(", "rust"), ("let mut ", "rust"), ("println!", "rust"), ("impl ", "rust"),
    ("package main", "go"), ("func ", "go"), (":= ", "go"), ("public static void", "java"),
    ("system.out", "java"), ("public class", "java"), (": string", "typescript"),
    (": number", "typescript"), ("console.log", "javascript"), ("const ", "javascript"),
    ("=> ", "javascript"), ("function ", "javascript"), ("def ", "python"), ("elif ", "python"),
    ("self.", "python"), ("print(", "python"), ("select * from", "sql"), ("insert into", "sql"),
    ("create table", "sql"), ("#!/bin/", "bash"), ("sudo ", "bash"), ("echo ", "bash"),
    ("puts ", "ruby"),
)  # fmt: skip

# Words of a pasted stack trace, in prose or code; and the frame lines of one (matched as is).
TRACES = (
    "traceback", "stacktrace", "panicked", "sigsegv", "segmentation fault", "core dumped",
    "exception in thread", "most recent call last", "npm err",
)  # fmt: skip
TRACE_FRAMES = ("\n    at ", "\n\tat ")
# An error line in prose: "TypeError: …", "error[E0382]: …" (matched lower-cased).
ERROR_LINES = ("error: ", "exception: ", "error[e")
# Words only code has; three of them in prose mean code pasted without a fence, and then each
# line ending or indent below counts as a line of code.
SYNTAX_WORDS = (
    "def", "elif", "self", "const", "var", "func", "fn", "impl", "mut", "void", "printf",
    "println", "console", "nil", "null", "async", "await", "lambda", "#include", "struct",
    "typedef", "namespace", "std", "kwargs", "args", "len", "str", "bool", "isinstance", "usize",
    "i32", "u8", "enum", "useeffect", "usestate", "fmt", "err", "return", "import", "export",
    "props", "div",
)  # fmt: skip
CODE_LINE_MARKERS = (";\n", "{\n", "}\n", ":\n", "\n    ", "\n\t")
EXT_RE = re.compile(r"\.(" + "|".join(sorted(EXTENSIONS, key=len, reverse=True)) + r")\b")
# Short questions that want a fact, not work: "what is …", "how do I …" (matched at the start).
DEFINE_RE = re.compile(r"(?:what is|what are|what's|who|when|where|which|define)\b")
HOWTO_RE = re.compile(r"(?:how do i|how can i|how to|how do you|is it possible|is there)\b")

# Words are compared after punctuation (but "+" and "#", for c++ and c#) becomes spaces.
_PUNCTUATION = str.maketrans(dict.fromkeys("!\"$%&'()*,./:;<=>?@[\\]^_`{|}~\n\t\r-", " "))
# Every ASCII character in the table (most as themselves): a character missing from it costs
# str.translate a raised and caught KeyError, once per distinct character per call.
_SPACES = {i: _PUNCTUATION.get(i, i) for i in range(128)}


def normalize(text: str) -> str:
    """Lower-cased text with punctuation turned into spaces, as the vocabulary is stored."""
    return text.translate(_SPACES)


def _inflections(word: str) -> tuple[str, ...]:
    stem = word[:-1] if word[-1] in "ey" else word
    return (word + "s", word + "es", word + "ed", word + "d", word + "ing", stem + "ing",
            stem + "ies", stem + "ied")  # fmt: skip


def _vocabulary() -> dict[str, tuple[str, tuple[Meaning, ...]]]:
    table: dict[str, list[Meaning]] = {}

    def add(kind: str, entries: Iterable[tuple[str, str, int]]) -> None:
        for word, value, weight in entries:
            table.setdefault(normalize(word), []).append((kind, value, weight))

    for kind, weighted in (("task", TASKS), ("ask", ASKS)):
        add(kind, ((w, task, n) for task, words in weighted.items() for w, n in words.items()))
    add("hard", ((w, normalize(w), 1) for w in HARD))
    add("easy", ((w, normalize(w), 1) for w in EASY))
    add("ref", ((w, "code", 1) for w in CODE_REFS))
    add("trace", ((w, "trace", 1) for w in TRACES))
    for domain, words in DOMAINS.items():
        add("domain", ((w, domain, DOMAIN_WEIGHTS.get(domain, 1)) for w in words))
    inflected = {v: w for w in table if " " not in w for v in _inflections(w) if v not in table}
    # Names and code words are not inflected: "reacted" is no framework.
    add("lang", ((w, language, 1) for w, language in LANGUAGES.items()))
    add("stack", ((w, stack, 1) for w, stack in STACKS.items()))
    add("syntax", ((w, w, 1) for w in SYNTAX_WORDS))
    vocab = {word: (word, tuple(meanings)) for word, meanings in table.items()}
    vocab.update((v, vocab[w]) for v, w in inflected.items() if v not in vocab)
    return vocab


def _anchors(phrases: Iterable[str]) -> dict[str, tuple[str, ...]]:
    anchors: dict[str, tuple[str, ...]] = {}
    for phrase in phrases:
        anchor = max(phrase.split(), key=len)
        for form in (anchor, anchor + "s"):  # "race conditions" holds "race condition"
            anchors[form] = (*anchors.get(form, ()), phrase)
    return anchors


# word or phrase (normalized, maybe inflected) → (its base form, its meanings)
VOCAB = _vocabulary()
# A phrase is looked for only when its longest word is among the words of the text.
ANCHORS = _anchors(p for p in VOCAB if " " in p)
WORDS = frozenset(w for w in VOCAB if " " not in w) | frozenset(ANCHORS)
# What code can tell: its language, its stack, a stack trace.
CODE_KINDS = frozenset({"lang", "stack", "trace"})


def _tells_about_code(word: str) -> bool:
    keys = [word] if word in VOCAB else []
    meanings = (m for key in (*keys, *ANCHORS.get(word, ())) for m in VOCAB[key][1])
    return any(kind in CODE_KINDS for kind, _, _ in meanings)


CODE_WORDS = frozenset(filter(_tells_about_code, WORDS))
