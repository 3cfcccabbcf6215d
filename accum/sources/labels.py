"""Label specs: where a page's category comes from.

A spec is a short string:

``dir``, ``dir:N``
    The N-th directory level of the file's path under the root that was given (1-based;
    ``dir`` is ``dir:1``). Directories only. A file with fewer levels gets no label.
``field:NAME``
    The record field ``NAME`` (JSONL and Parquet only).
``rules:FILE``
    A rules file that maps URL patterns to labels (any format).
``none`` (or ``None``)
    No label.

Rules file format
-----------------
UTF-8 text, one rule per line::

    # comment
    PATTERN   LABEL

``PATTERN`` and ``LABEL`` are separated by whitespace; the label is the rest of the line
(it may contain spaces), the pattern cannot contain whitespace. ``PATTERN`` is a shell
glob matched against the full URL (:func:`fnmatch.fnmatchcase`: case-sensitive, ``*``
also matches ``/``), or a regular expression when it starts with ``re:``, searched
anywhere in the URL (anchor it with ``^``/``$`` as needed; write ``\\s`` for spaces).
Blank lines and lines starting with ``#`` are ignored. The first matching rule wins; a
URL that no rule matches gets no label. Every label must pass
:func:`accum.pages.check_label`; a file with one that does not is refused with its line.

Regular expressions use `RE2 syntax <https://github.com/google/re2/wiki/Syntax>`_ and
run on the RE2 engine (``google-re2``), whose matching time is linear in the URL's
length. Python's backtracking engine needs time exponential in the length for some
patterns: ``re:(a+)+$`` took 5 s on a 26-character URL there, twice as long with each
further character (years at 50); RE2 takes 0.1 ms on a 100,000-character URL. RE2 has
no backreferences (``\\1``, ``(?P=name)``), lookarounds (``(?=``, ``(?!``, ``(?<=``,
``(?<!``), atomic groups or possessive quantifiers; a rule that uses them is refused
when the file is read. Its ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII-only (``\\pL``
is any letter), ``\\z`` ends the text (not ``\\Z``), and a count is at most 1000
(``a{1000}``). Globs stay on Python's engine: :func:`fnmatch.translate` makes each
``*`` an atomic group, so no glob backtracks (``*a*a*a*...*b`` of 40 stars fails on a
20,000-character URL in 0.1 ms).

Field values
------------
``field:NAME`` takes a string as is and an integer as its decimal string (ratings,
years: ``7`` and ``7.0`` are both ``"7"``). A missing field or a null is no label. Any
other value (a boolean, a number with a fraction, NaN or infinity, a list, an object, a
date) makes the record "malformed": ``str(True)`` or ``str(nan)`` would become
categories nobody meant.
"""

from __future__ import annotations

import decimal
import fnmatch
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import re2

from accum.pages import check_label

#: Label kinds each reader format accepts.
KINDS_BY_FORMAT = {
    "dir": ("none", "dir", "rules"),
    "text": ("none", "rules"),
    "warc": ("none", "rules"),
    "jsonl": ("none", "field", "rules"),
    "parquet": ("none", "field", "rules"),
}

_SPEC_HELP = "expected one of 'dir', 'dir:N' (N >= 1), 'field:NAME', 'rules:FILE' or 'none'"


@dataclass(frozen=True)
class Rule:
    """One line of a rules file.

    Attributes
    ----------
    pattern : str
        The pattern as written (``re:`` prefix included).
    label : str
        The label it gives.
    regex : re.Pattern or re2._Regexp
        The compiled pattern: a glob translated to an anchored Python regex, a ``re:``
        pattern compiled by RE2 (both have ``match`` and ``search``).
    is_glob : bool
        True for a glob (matched against the whole URL), False for a ``re:`` regex
        (searched anywhere in the URL).
    """

    pattern: str
    label: str
    regex: Any
    is_glob: bool

    def matches(self, url: str) -> bool:
        """Whether this rule applies to ``url``."""
        if self.is_glob:
            return self.regex.match(url) is not None
        return self.regex.search(url) is not None


@dataclass(frozen=True)
class LabelSpec:
    """A parsed label spec (see the module docstring for the spec strings).

    Attributes
    ----------
    kind : str
        ``"none"``, ``"dir"``, ``"field"`` or ``"rules"``.
    level : int
        Directory level for ``dir`` (1-based).
    field : str or None
        Record field for ``field``.
    rules_file : str or None
        Path of the rules file for ``rules``.
    rules : tuple of Rule
        The rules read from it.
    """

    kind: str = "none"
    level: int = 1
    field: str | None = None
    rules_file: str | None = None
    rules: tuple[Rule, ...] = ()

    def __str__(self) -> str:
        if self.kind == "dir":
            return "dir" if self.level == 1 else f"dir:{self.level}"
        if self.kind == "field":
            return f"field:{self.field}"
        if self.kind == "rules":
            return f"rules:{self.rules_file}"
        return "none"

    def label_for_url(self, url: str) -> str | None:
        """The label of the first rule matching ``url``; None without a match or rules."""
        for rule in self.rules:
            if rule.matches(url):
                return rule.label
        return None

    def label_for_dirs(self, dirs: Sequence[str]) -> str | None:
        """The ``level``-th of the directories ``dirs`` (relative to the root), for ``dir``.

        None when there are fewer levels or the spec is not ``dir``.
        """
        if self.kind != "dir" or len(dirs) < self.level:
            return None
        return dirs[self.level - 1]

    def label_for_record(self, record: Mapping[str, Any]) -> str | None:
        """The value of the ``field`` of a JSON/Parquet record, as a label.

        A string is returned as is, an integer (or a float or decimal without a fraction,
        as a Parquet integer column with nulls often arrives) as its decimal string. None
        when the spec is not ``field`` or the value is missing or null.

        Raises
        ------
        TypeError
            For any other value (a boolean, a number with a fraction, NaN, infinity, a
            list, an object, a date, bytes), saying what it is.
        """
        if self.kind != "field":
            return None
        value = record.get(self.field)
        if value is None or isinstance(value, str):
            return value
        whole = _whole_number(value)
        if whole is not None:
            return str(whole)
        raise TypeError(
            f"label of field {self.field!r} is {_describe(value)}; labels must be strings or integers "
            "(convert the field, or choose another with field:NAME)"
        )

    def check_format(self, fmt: str) -> None:
        """Raise ValueError when this spec cannot label pages of format ``fmt``."""
        allowed = KINDS_BY_FORMAT.get(fmt, ("none", "rules"))
        if self.kind not in allowed:
            raise ValueError(
                f"label spec {str(self)!r} does not apply to {fmt!r} input: "
                f"{fmt!r} accepts {', '.join(repr(k) for k in allowed)} labels "
                "(dir: directories only; field:NAME: JSONL and Parquet only; "
                "rules:FILE: any input)"
            )


def _whole_number(value: Any) -> int | None:
    """``value`` as an int when it is an integer, or a finite float or decimal without a
    fraction; else None (booleans too, though Python counts them as integers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, decimal.Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return None


def _describe(value: Any) -> str:
    """What a label value that is not a string or an integer is, for a message."""
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN (not a number)"
        return f"an infinite number ({value})" if math.isinf(value) else f"a number with a fraction ({value!r})"
    if isinstance(value, decimal.Decimal):
        return f"a number with a fraction ({value})" if value.is_finite() else f"a non-finite number ({value})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (bytes, bytearray)):
        return "bytes (a binary column)"
    return f"a {type(value).__name__} ({str(value)[:40]!r})"


def parse_label_spec(spec: str | LabelSpec | None) -> LabelSpec:
    """Parse a label spec string (see the module docstring).

    Parameters
    ----------
    spec : str, LabelSpec or None
        The spec; a :class:`LabelSpec` is returned as is, None means no label.

    Returns
    -------
    LabelSpec

    Raises
    ------
    ValueError
        For an unknown spec, a bad ``dir:N`` level, an empty field name, or a rules file
        that cannot be read or parsed.
    """
    if spec is None:
        return LabelSpec()
    if isinstance(spec, LabelSpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"label spec must be a string or None, got {type(spec).__name__}; {_SPEC_HELP}")
    text = spec.strip()
    kind, sep, arg = text.partition(":")
    kind = kind.lower()
    if kind == "none" and not sep:
        return LabelSpec()
    if kind == "dir":
        if not sep:
            return LabelSpec(kind="dir", level=1)
        if not arg.strip().isdigit() or int(arg) < 1:
            raise ValueError(
                f"bad label spec {spec!r}: the level in 'dir:N' must be a whole number >= 1 "
                "(dir:1 is the first directory under the root), e.g. 'dir:2'"
            )
        return LabelSpec(kind="dir", level=int(arg))
    if kind == "field" and sep:
        if not arg:
            raise ValueError(f"bad label spec {spec!r}: 'field:' needs a field name, e.g. 'field:category'")
        return LabelSpec(kind="field", field=arg)
    if kind == "rules" and sep:
        if not arg:
            raise ValueError(f"bad label spec {spec!r}: 'rules:' needs a file, e.g. 'rules:labels.rules'")
        return LabelSpec(kind="rules", rules_file=arg, rules=load_rules(arg))
    raise ValueError(f"unknown label spec {spec!r}; {_SPEC_HELP}")


def load_rules(path: str) -> tuple[Rule, ...]:
    """Read a rules file (format in the module docstring).

    Raises
    ------
    ValueError
        When the file cannot be read, is not UTF-8, has a bad line or no rules.
    """
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ValueError(
            f"cannot read label rules file {path!r}: {exc.strerror or exc}; "
            "give an existing file as 'rules:PATH'"
        ) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"label rules file {path!r} is not UTF-8 (byte {exc.start}); save it as UTF-8"
        ) from None
    return parse_rules(text, source=path)


def parse_rules(text: str, source: str = "<rules>") -> tuple[Rule, ...]:
    """Parse the text of a rules file (format in the module docstring).

    Parameters
    ----------
    text : str
        The file's content.
    source : str
        Its name, for error messages.

    Raises
    ------
    ValueError
        On a line without a label or with a label :func:`accum.pages.check_label`
        refuses, a regex that is invalid or that RE2 cannot run, or when there are no
        rules.
    """
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(None, 1)
        if len(parts) < 2:
            raise ValueError(
                f"{source}:{number}: rule {stripped!r} has no label; expected "
                "'PATTERN LABEL' (a glob or re:REGEX, whitespace, then the label)"
            )
        pattern, label = parts[0], parts[1].strip()
        try:
            check_label(label)
        except ValueError as exc:
            raise ValueError(f"{source}:{number}: {exc}") from None
        if pattern.startswith("re:"):
            regex = _compile_re2(pattern[3:], f"{source}:{number}")
            rules.append(Rule(pattern=pattern, label=label, regex=regex, is_glob=False))
        else:
            regex = re.compile(fnmatch.translate(pattern))
            rules.append(Rule(pattern=pattern, label=label, regex=regex, is_glob=True))
    if not rules:
        raise ValueError(
            f"label rules file {source!r} has no rules; add lines 'PATTERN LABEL' "
            "(e.g. '*://*.cornell.edu/*  cornell')"
        )
    return tuple(rules)


#: What RE2's refusal of a pattern that Python accepts means, by a regex over its message.
_RE2_REFUSALS = tuple((re.compile(message), feature) for message, feature in (
    (r"invalid escape sequence: \\[1-9]", "a backreference"),
    (r"invalid escape sequence: \\Z", "\\Z (end of text), which RE2 writes \\z"),
    (r"invalid escape sequence", "an escape RE2 does not know"),
    (r"invalid perl operator: \(\?=", "a lookahead"),
    (r"invalid perl operator: \(\?!", "a negative lookahead"),
    (r"invalid perl operator: \(\?<=", "a lookbehind"),
    (r"invalid perl operator: \(\?<!", "a negative lookbehind"),
    (r"invalid perl operator: \(\?P", "a named backreference (?P=name)"),  # RE2 has (?P<name>...)
    (r"invalid perl operator: \(\?>", "an atomic group"),
    (r"bad repetition operator", "a possessive or doubled quantifier"),
    (r"invalid repetition size", "a repetition count over 1000 (nested counts multiply)"),
    (r"pattern too large", "more states than RE2's memory budget (large counted repetitions)"),
))


def _compile_re2(pattern: str, where: str):
    """Compile the regex of a ``re:`` rule with RE2, or raise ValueError saying why not.

    A pattern that Python's ``re`` refuses too is reported with Python's (clearer)
    message; one that only RE2 refuses names the feature RE2 does not have.
    """
    options = re2.Options()
    options.log_errors = False  # RE2 would also print its error to stderr; ours says more
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(
            f"{where}: bad regular expression {pattern!r}: {exc}; fix it, or drop the 're:' prefix to use a shell glob"
        ) from None
    feature = next((what for message, what in _RE2_REFUSALS if message.match(reason)), "a feature RE2 lacks")
    raise ValueError(
        f"{where}: regular expression {pattern!r} uses {feature} (RE2: {reason}); rules run on RE2, whose "
        "matching time is linear in the URL's length, so it has no backreferences, lookarounds, atomic groups or "
        "possessive quantifiers: rewrite the pattern without it (syntax: https://github.com/google/re2/wiki/Syntax), "
        "or use a shell glob"
    ) from None
