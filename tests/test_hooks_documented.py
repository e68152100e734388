"""docs/hooks.md documents every hook in instore/hookspecs.py: when it is called, its arguments,
what it returns, and an example that compiles. Adding a hook without documenting it fails here."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from instore import hookspecs

HOOKS_DOC = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
SECTION = re.compile(r"^## `(\w+)`\s*$", re.MULTILINE)
REQUIRED = ("**When it is called:**", "**Arguments:**", "**Returns:**", "**Example:**")
EXAMPLE = re.compile(r"```python\n(.*?)```", re.DOTALL)


def hook_specs() -> dict[str, bool]:
    """Every hook spec: name -> whether it is firstresult."""
    specs = {}
    for name, value in vars(hookspecs).items():
        options = getattr(value, "instore_spec", None)
        if inspect.isfunction(value) and options is not None:
            specs[name] = bool(options.get("firstresult"))
    return specs


def doc_sections(text: str) -> dict[str, str]:
    """Each ``## `hook``` section of the document, by hook name."""
    matches = list(SECTION.finditer(text))
    return {
        match.group(1): text[match.end() : matches[i + 1].start() if i + 1 < len(matches) else None]
        for i, match in enumerate(matches)
    }


def undocumented(spec_names: set[str], text: str) -> set[str]:
    return spec_names - set(doc_sections(text))


SECTIONS = doc_sections(HOOKS_DOC.read_text())


def test_every_hook_has_a_section() -> None:
    missing = undocumented(set(hook_specs()), HOOKS_DOC.read_text())
    assert not missing, f"document these hooks in docs/hooks.md: {', '.join(sorted(missing))}"


def test_no_section_for_a_hook_that_does_not_exist() -> None:
    stale = set(SECTIONS) - set(hook_specs())
    assert not stale, f"docs/hooks.md documents hooks that are gone: {', '.join(sorted(stale))}"


def test_the_check_catches_a_new_undocumented_hook() -> None:
    assert undocumented({*hook_specs(), "offer_ranking"}, HOOKS_DOC.read_text()) == {
        "offer_ranking"
    }


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_each_section_says_when_what_returns_and_shows_an_example(name: str) -> None:
    section = SECTIONS.get(name, "")
    for part in REQUIRED:
        assert part in section, f"docs/hooks.md: `{name}` needs {part}"
    examples = EXAMPLE.findall(section)
    assert examples, f"docs/hooks.md: `{name}` needs a ```python example"
    for code in examples:
        compile(code, f"docs/hooks.md:{name}", "exec")  # a typo in an example fails here
    assert f"def {name}(" in "".join(examples), f"the example of `{name}` must implement it"


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_first_result_hooks_are_marked(name: str) -> None:
    marked = "*First result.*" in SECTIONS.get(name, "")
    assert marked == hook_specs()[name], f"docs/hooks.md: `{name}` first-result marking is wrong"
