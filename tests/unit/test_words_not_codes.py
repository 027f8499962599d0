"""Code, docs, messages and tests say what they mean in words.

Every tracked text file is read (binary files and the recorded fixtures under tests/fixtures/
are skipped) for planning shorthand a reader of the repository cannot follow: feature codes
(a capital F or B and a number), "issue 8", section pointers such as "ref §4.2", and pointers
to planning documents kept outside the repository. A Zoho fact belongs in the comment itself
or in docs/zoho-api-notes.md, cited by its heading.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

#: What each pattern finds, and the pattern.
PATTERNS: dict[str, re.Pattern[str]] = {
    "a feature code": re.compile(r"\b[FB]\d{1,2}\b"),
    "an issue number": re.compile(r"\b[Ii]ssues? #?\d+"),
    "a section pointer": re.compile(r"\bref\.? ?§|§ ?\d"),
    "a pointer outside the repository": re.compile(
        r"\.\./shared\b|\bshared/(?:reference|specs)\b|\breference/[\w-]+\.md\b"
        r"|(?<![\w/.-])(?:mission|design|cli|style)\.md\b"),
}


def tracked_text_files() -> list[str]:
    """The repository's tracked files that hold text, without the fixtures and this file."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    names = [n for n in out.stdout.decode().split("\0") if n]
    return [n for n in names if not n.startswith("tests/fixtures/") and n != THIS]


def read_text(name: str) -> str | None:
    """The file's text, or None for a binary (or vanished) file."""
    try:
        data = (ROOT / name).read_bytes()
    except OSError:
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def findings(name: str, text: str) -> list[str]:
    """`file:line: what — the line` for every match in one file."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in PATTERNS.items():
            match = pattern.search(line)
            if match:
                found.append(f"{name}:{number}: {what} ({match.group(0)!r}): {line.strip()}")
    return found


def test_patterns_find_what_they_mean_and_nothing_else():
    hits = "\n".join([
        "pause (F22) and the plan (B1)", "see issue 8", "(issues 4, 5)", "ref §4.2",
        "reference/zoho-api.md", "../shared/specs", "design.md", "per cli.md",
    ])
    assert len(findings("x", hits)) == 8
    clean = "\n".join([
        'LINKS = {"A1": "BA1"}', "B2B customers", "0xF1", "code 3062", "ruff F821",
        "docs/zoho-api-notes.md", "UTF-8", "an issue of money", "sha a562cd4",
    ])
    assert findings("x", clean) == []


def test_the_repository_says_it_in_words():
    problems = [f for name in tracked_text_files()
                if (text := read_text(name)) is not None for f in findings(name, text)]
    assert not problems, (
        "Say it in words: no planning codes (F5, B1), issue numbers, section pointers (ref §n) "
        "or pointers to documents outside the repository. Put a Zoho fact in the comment or in "
        "docs/zoho-api-notes.md (cite its heading). Found:\n" + "\n".join(problems))
