"""Request bodies read with a bounded cost, whatever a client sends.

FastAPI parses a JSON body with ``json.loads`` and validates it with pydantic on the
event loop, and pydantic reports every problem it finds: one body of half a million
unknown keys holds the loop for seconds (``json.loads`` alone keeps the GIL for the
whole parse, so moving it to a thread does not help) and answers tens of megabytes of
errors. Here a body goes through three steps, all on a worker thread:

1. :func:`shape_problem` scans the raw bytes for JSON structure only (brackets, commas,
   where strings begin and end) and stops at the first bound it crosses: members per
   object, nesting depth, members and items in all. Its regular expressions each look at
   one window of :data:`WINDOW` bytes, so the GIL is released between windows and the
   event loop keeps answering even while a large body is scanned;
2. ``json.loads`` then parses a body whose structure is known to be small (its strings
   may be long: those parse at memory speed);
3. pydantic validates it; :func:`problems` keeps the first :data:`MAX_ERRORS` errors, each
   cut to a few hundred bytes, so a 422 answer stays a few kilobytes.

The bounds of step 1 are looser than any request schema (the schemas' own messages, such
as "List should have at most 256 items", still come from pydantic) yet small enough that
steps 2 and 3 cost little whatever passes.
"""

from __future__ import annotations

import json
import re

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

#: Bytes one regular-expression call looks at: the longest the scan holds the GIL at once.
WINDOW = 1 << 16
#: Members an object may have (the largest request schema has 10 fields).
MAX_KEYS = 64
#: Nesting depth of arrays and objects (the request schemas need 2).
MAX_DEPTH = 8
#: Errors a 422 answer lists, and how much of each part of an error it keeps.
MAX_ERRORS = 20
MAX_LOC_PARTS = 6
MAX_LOC_CHARS = 40
MAX_MSG_CHARS = 200
#: Errors spelled out in the one-line ``message`` of a 422 answer.
MAX_ERRORS_IN_MESSAGE = 5

_STRUCTURE = re.compile(rb'["{}\[\],]')
#: The inside of a JSON string up to its closing quote (possessive: no backtracking state).
_STRING_INSIDE = re.compile(rb'[^"\\]*+(?:\\.[^"\\]*+)*+', re.DOTALL)


class BodyProblems(RequestValidationError):
    """A 422 whose ``errors()`` are the first :data:`MAX_ERRORS` of ``total``."""

    def __init__(self, errors: list, total: int):
        super().__init__(errors)
        self.total = total


def max_members(max_batch: int) -> int:
    """Members and items a body may hold in all: a full batch of pages (a few fields
    each) fits many times over, and ``json.loads`` plus pydantic on that many values stay
    cheap."""
    return 16 * max_batch + 1024


def shape_problem(body: bytes, max_total: int, max_keys: int = MAX_KEYS, max_depth: int = MAX_DEPTH) -> str | None:
    """Why the JSON structure of ``body`` is too large to parse (None when it is not).

    Counts commas (a member or item after the first of its container) and opening
    brackets (a container) without parsing anything else. Bytes that are not valid JSON
    are left to ``json.loads``, whose error then names them: the counts of a valid prefix
    are exact, so whatever ``json.loads`` reads before it fails is within the bounds.
    """
    n = len(body)
    stack: list[list] = []  # per open container: [is_object, commas so far]
    total = 0
    pos = 0
    while pos < n:
        match = _STRUCTURE.search(body, pos, min(n, pos + WINDOW))
        if match is None:
            pos += WINDOW
            continue
        char, pos = body[match.start()], match.end()
        if char == 0x22:  # '"': skip the string
            pos = _string_end(body, pos)
            if pos is None:
                return None  # unterminated: json.loads says so
        elif char in b"{[":
            if len(stack) >= max_depth:
                return f"arrays and objects nest deeper than {max_depth} levels"
            stack.append([char == 0x7B, 0])
            total += 1
        elif char in b"}]":
            if stack:
                stack.pop()
        else:  # ','
            total += 1
            if stack:
                stack[-1][1] += 1
                if stack[-1][0] and stack[-1][1] >= max_keys:
                    return f"an object has more than {max_keys} members"
        if total > max_total:
            return f"more than {max_total:,} members and items in all"
    return None


def _string_end(body: bytes, pos: int) -> int | None:
    """The position after the closing quote of the string whose inside starts at ``pos``."""
    n = len(body)
    while pos < n:
        end = _STRING_INSIDE.match(body, pos, min(n, pos + WINDOW)).end()
        if end < n and body[end] == 0x22:
            return end + 1
        if end == pos:  # a lone backslash at the very end
            return None
        pos = end  # the window ended (an escape cut by its end is read again by the next one)
    return None


def parse(body: bytes, content_type: str | None, adapter: TypeAdapter, max_total: int):
    """The request ``body`` validated by ``adapter`` (to run on a worker thread).

    Raises
    ------
    BodyProblems
        422: not JSON, too large a structure, or not what the schema accepts (at most
        :data:`MAX_ERRORS` errors, each cut short).
    """
    if not _is_json(content_type):
        raise unprocessable(("body",), f"the body must be JSON sent with Content-Type: application/json, not "
                            f"{_cut(content_type or 'no Content-Type', MAX_LOC_CHARS)!r}")
    problem = shape_problem(body, max_total)
    if problem is not None:
        raise unprocessable(("body",), f"the JSON body is too large a structure: {problem}; send the fields of the "
                            "schema at /openapi.json only, and split a larger batch")
    if not body.strip():
        raise unprocessable(("body",), "the body is empty: send a JSON document as /openapi.json describes")
    try:
        value = json.loads(body)
    except RecursionError:  # deeper than the scan counts (it skips what is not JSON)
        raise unprocessable(("body",), "the JSON body nests too deep") from None
    except UnicodeDecodeError as exc:
        raise unprocessable(("body",), f"the body is not UTF-8 (byte {exc.start}): send JSON in UTF-8") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of thousands of digits
        where = f" at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise unprocessable(("body",), f"the body is not valid JSON{where}: {_cut(str(exc), MAX_MSG_CHARS)}") from None
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        raise BodyProblems([{**e, "loc": ("body", *e["loc"])} for e in errors[:MAX_ERRORS]], len(errors)) from None


def unprocessable(loc: tuple, message: str) -> BodyProblems:
    """A 422 in the shape of FastAPI's validation errors (``detail`` list plus ``message``)."""
    return BodyProblems([{"type": "value_error", "loc": loc, "msg": message}], 1)


def problems(exc: RequestValidationError) -> dict:
    """The answer of a 422: at most :data:`MAX_ERRORS` errors, each cut short (no input,
    no context), and a one-line ``message`` naming the first few."""
    errors = exc.errors()
    total = getattr(exc, "total", len(errors))
    detail = [{"type": _cut(str(e.get("type", "")), MAX_LOC_CHARS),
               "loc": [p if isinstance(p, int) else _cut(str(p), MAX_LOC_CHARS) for p in e["loc"][:MAX_LOC_PARTS]],
               "msg": _cut(str(e.get("msg", "")), MAX_MSG_CHARS)}
              for e in errors[:MAX_ERRORS]]
    parts = [f"{'.'.join(str(p) for p in e['loc'] if p not in ('body', 'query'))}: {e['msg']}".lstrip(": ")
             for e in detail[:MAX_ERRORS_IN_MESSAGE]]
    if total > len(parts):
        parts.append(f"and {total - len(parts):,} more problem{'s' if total - len(parts) > 1 else ''}")
    return {"detail": detail, "message": "; ".join(parts)}


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
