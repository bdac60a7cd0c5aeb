"""A griffe extension for the API reference: docstring examples render as code.

aiospark's docstrings are written for ``doctest`` (``>>>`` lines, then the expected
output), not in Markdown.  Left as they are, Markdown joins such lines into one
paragraph and mkdocs-autorefs reads outputs like ``[1, 2, 3]`` as links.  This
extension puts every run of doctest lines (from a ``>>>`` line to the next blank
line) in a fenced ``pycon`` block, drops doctest directives such as
``# doctest: +ELLIPSIS`` and turns reStructuredText's ``text::`` into ``text:``.
The docstrings in the code stay untouched.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_DIRECTIVE = re.compile(r"\s*#\s*doctest:\s*[-+]\w+(?:\s*,\s*[-+]\w+)*\s*$")


def fence_doctests(text: str) -> str:
    r"""Return ``text`` with each doctest run wrapped in a ```` ```pycon ```` fence.

    >>> fence_doctests("Doubles it::\n\n>>> f(2)\n4\n\nDone.").split("\n")
    ['Doubles it:', '', '```pycon', '>>> f(2)', '4', '```', '', 'Done.']
    """
    out: list[str] = []
    lines = text.split("\n")
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.lstrip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        if in_fence or not (stripped == ">>>" or stripped.startswith(">>> ")):
            out.append(line)
            i += 1
            continue
        indent = line[: len(line) - len(stripped)]
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(_DIRECTIVE.sub("", lines[i]).replace("<BLANKLINE>", ""))
            i += 1
        for j in range(len(out) - 1, -1, -1):  # the paragraph introducing the example
            if out[j].strip():
                if out[j].endswith("::"):
                    out[j] = out[j][:-1]
                break
        out += [f"{indent}```pycon", *block, f"{indent}```"]
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    """Fence the doctest examples of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
