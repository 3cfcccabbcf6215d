"""``accum report``: one document that answers, for a store, the question accum exists for.

The question (issue #21): Blekko's per-topic accumulators "added vectors rapidly for the
first 10,000 pages and then added fewer and fewer as we got deeper", approaching "maybe a
decimal order wider than the number of documents"; if LLM parameters worked like that,
would a 400B-parameter model be able to recall at least 40B unique documents? The
commands answer it piecemeal (``saturation``, ``forecast``, ``capacity``, ``recall``);
the report puts their results in one place, each number with what it is:

- **measured**: counted on this store (pages, features, bits, recall, and the errors of
  forecasts checked on its own pages);
- **fitted**: a parameter of a model fitted to this store (Heaps' K and β, their R²);
- **extrapolated**: a prediction past what the store holds (features and parameters at
  more pages, forecasts at 2x and 10x, the unseen features, an LLM's capacity at a size
  its bits per parameter were not measured at);
- **cited**: from the literature or the question (LLM sizes, 3.6 bits per parameter).

A report is data (:class:`Report`: sections of :class:`Text`, :class:`Table` and
:class:`Figure`, every number a :class:`Num` with its kind), built by :func:`build` from
what the command gathered (:class:`Inputs`), and rendered by :func:`render_html` or
:func:`render_markdown` from the same data, so the two formats cannot say different
things. HTML is self-contained (CSS inline, figures as base64 PNG, a content security
policy that forbids every fetch); Markdown refers to its figures as PNG files written
beside it, which is what Markdown viewers display (many refuse data URIs).
This module reads no store: the command (``accum.cli.report_cmd``) gathers the inputs.
"""

from __future__ import annotations

import base64
import html
import math
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from . import __version__
from .capacity import BITS_PER_PARAMETER, KNOWLEDGE_BITS_PER_PARAMETER, answer_numbers
from .saturation import FORECAST_NAMES

#: What a number can be, in the words of the report's legend.
KINDS = {"measured": "counted on this store", "fitted": "a parameter of a model fitted to it",
         "extrapolated": "a prediction past what it holds", "cited": "from the literature or the question"}
#: The letter of each kind's badge in HTML, and its mark after a number in Markdown.
BADGES = {"measured": "M", "fitted": "F", "extrapolated": "E", "cited": "C"}
MARKS = {"measured": "ᴹ", "fitted": "ᶠ", "extrapolated": "ᴱ", "cited": "ᶜ"}
#: Categories drawn beside all pages in the growth figures (the largest ones).
FIGURE_CATEGORIES = 7
#: Blekko's recollection in the question: features about a decimal order more than pages.
BLEKKO_FEATURES_PER_PAGE = 10
#: The references the report cites: (text, link or None).
REFERENCES = (
    ("The question of issue #21: Blekko's per-topic accumulators, and a 400B-parameter model "
     "recalling 40B documents", None),
    ("Morris et al. 2025, How much do language models memorize? (3.6 bits per parameter; 3.51 in "
     "bf16, 3.83 in fp32)", "https://arxiv.org/abs/2505.24190"),
    ("Allen-Zhu & Li 2024, Physics of Language Models: Part 3.3, Knowledge Capacity Scaling Laws "
     "(2 bits of knowledge per parameter)", "https://arxiv.org/abs/2404.05405"),
    ("Carlini et al. 2022, Quantifying Memorization Across Neural Language Models (prompted "
     "extraction: a k-token prompt, the next m tokens by greedy decoding)",
     "https://arxiv.org/abs/2202.07646"),
    ("Orlitsky, Suresh & Wu 2016, Optimal prediction of the number of unseen species, "
     "PNAS 113:13283 (smoothed Good–Toulmin)", None),
)
NEURAL_MISSING = "not measured yet — run `accum capacity --neural` on this store"
NEURAL_NEEDS_GENERATOR = ("not measured — `accum capacity --neural` trains on the generator's tokens, and this store "
                          "keeps no generator (ingest with --markov-order 8 into a new --store)")


# -- the document as data ------------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    """A number and what it is (one of :data:`KINDS`), with how to write it: ``int``
    (thousands separators), ``sig`` (three significant digits, powers of ten from a
    million on), ``exact`` (as ``sig`` without trailing zeros: a given value such as
    3.6 or 4·10¹⁰), ``pct``, ``signed`` (a signed percentage) or ``fixed`` (three decimals)."""

    value: float | None
    kind: str
    style: str = "sig"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"a number is one of {', '.join(KINDS)}, not {self.kind!r}")

    @property
    def text(self) -> str:
        return format_number(self.value, self.style)


@dataclass(frozen=True)
class Text:
    """A paragraph of text and :class:`Num` parts; ``notice`` marks what is missing (not
    measured, not kept)."""

    parts: tuple
    notice: bool = False


@dataclass(frozen=True)
class Table:
    """Rows of cells under ``columns``; a row's first cell names it. A cell is text, a
    :class:`Num`, a tuple of both, or None (nothing to show)."""

    columns: tuple
    rows: list
    caption: str = ""


@dataclass(frozen=True)
class Figure:
    """A PNG image; ``name`` is its file name's stem beside a Markdown report."""

    name: str
    png: bytes
    caption: str


@dataclass(frozen=True)
class Section:
    """A heading (``key`` is its anchor) and its blocks: :class:`Text`, :class:`Table`, :class:`Figure`."""

    key: str
    title: str
    blocks: list


@dataclass(frozen=True)
class Report:
    """A title, a paragraph about the store, the sections and the references: (text, link)."""

    title: str
    about: Text
    sections: list
    references: list = field(default_factory=list)


SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def format_number(value, style: str = "sig") -> str:
    """How a :class:`Num` is written (see its styles); None is a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if style == "int":
        return f"{value:,.0f}"
    if style == "fixed":
        return f"{value:.3f}"
    if style in ("pct", "signed"):
        percent = 100 * value
        digits = 1 if abs(percent) >= 1 or percent == 0 else 2 if abs(percent) >= 0.01 else 4
        return f"{percent:{'+' if style == 'signed' else ''}.{digits}f}%"
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = value / 10**exponent
    if round(abs(mantissa), 2) >= 10:  # 9.996·10^5 is written 1.00·10^6
        mantissa, exponent = mantissa / 10, exponent + 1
    if -3 <= exponent < 6:
        return _trimmed(f"{value:,.{max(0, 2 - exponent)}f}", style)
    power = "10" + str(exponent).translate(SUPERSCRIPTS)
    written = _trimmed(f"{mantissa:.2f}", style)
    return power if written == "1" else f"{written}·{power}"


def _trimmed(written: str, style: str) -> str:
    """``exact`` numbers lose trailing zeros after the point (3.6, not 3.60)."""
    return written.rstrip("0").rstrip(".") if style == "exact" and "." in written else written


# -- what the command gathers -----------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """Everything a report is built from.

    ``capacity``: :func:`accum.capacity.capacity_result`; ``saturation``: n-gram order ->
    (curves, summaries) of :func:`accum.saturation.analyse` for all pages (None) and every
    category; ``forecasts``: ``accum forecast --json`` for all categories (see
    ``accum.cli.forecast_cmd.forecasts``); ``asymptote``: :func:`accum.asymptote.asymptote`
    at order 1; ``neural``: the neural capacity the store keeps
    (``accum.storage.neural.read_neural_capacity``), or None when it has none.
    """

    store: str
    snapshot: str
    capacity: dict
    saturation: dict
    forecasts: dict
    asymptote: list
    neural: dict | None = None


def build(inputs: Inputs) -> Report:
    """The report of a store, from what the command gathered."""
    categories = len(inputs.saturation[1][1]) - 1
    c = inputs.capacity
    sections = [_short_answer(c), _growth(inputs), _levelling(inputs), _parameters(c, _error_at_10x(inputs)),
                *_capacity_sections(c, inputs.neural)]
    return Report(f"Would a 400B-parameter model recall 40B documents? The store {Path(inputs.store).name}",
                  _about(inputs.store, inputs.snapshot, c, categories), sections, list(REFERENCES))


def capacity_report(store: str, snapshot: str, capacity: dict, neural: dict | None = None,
                    figures: bool = True) -> Report:
    """``accum capacity``'s part of the report: the parameters, the recall, the LLMs and
    the answer, from :func:`accum.capacity.capacity_result` (``neural``: its ``--neural``
    result, or None); ``figures``: draw the parameters' figure (not for a terminal)."""
    sections = [_short_answer(capacity), _parameters(capacity, figure=figures),
                *_capacity_sections(capacity, neural)]
    return Report(f"Capacity of the store {Path(store).name}", _about(store, snapshot, capacity), sections,
                  list(REFERENCES))


def _about(store: str, snapshot: str, capacity: dict, categories: int | None = None) -> Text:
    m = capacity["measured"]
    named = () if categories is None else (
        ", ", Num(categories, "measured", "int"), f" categor{'y' if categories == 1 else 'ies'}")
    return Text((f"Store {store}, snapshot {snapshot}: ", Num(m["pages"], "measured", "int"), " pages, ",
                 Num(m["tokens"], "measured", "int"), " tokens", *named,
                 f". Made by accum {__version__} on {date.today().isoformat()}."))


def _capacity_sections(capacity: dict, neural: dict | None) -> list:
    return [_recall(capacity, neural), _llms(capacity), _answer(capacity, neural)]


def _answer_numbers(capacity: dict) -> dict:
    return answer_numbers(capacity["measured"]["page_bits"]["compressed_bits_per_page"], capacity["extrapolated"][-1])


def _short_answer(capacity: dict) -> Section:
    a = _answer_numbers(capacity)
    at_40b = capacity["extrapolated"][-1]
    verdict = "Yes" if a["recalls_all"] else "No"
    return Section("short", "The answer in short", [Text((
        f"{verdict}. At ", Num(BITS_PER_PARAMETER, "cited", "exact"), " bits per parameter a 400B-parameter model holds ",
        Num(a["capacity_bits"], "extrapolated"), " bits; a page of this store takes ",
        Num(a["bits_per_page"], "measured", "int"), " bits compressed, so the model could hold ",
        Num(a["pages_at_capacity"], "extrapolated"), " such pages verbatim, ",
        Num(a["share_of_documents"], "extrapolated", "pct"), " of 40B. An accumulator like this store's would need ",
        Num(a["accumulator_parameters"], "extrapolated"), " counts for 40B pages (",
        Num(at_40b["features"] / at_40b["pages"], "extrapolated"),
        " features per page there; Blekko's recollection was about ",
        Num(BLEKKO_FEATURES_PER_PAGE, "cited", "exact"), ")."))])


# -- growth and its forecasts --------------------------------------------------------------


def _growth(inputs: Inputs) -> Section:
    blocks = [Text((
        "Distinct features as pages accumulate, from the growth log recorded while ingesting: all pages and "
        "the largest categories, with Heaps' law fitted on each curve and the store's forecast from half of the "
        "pages (by the method its checks below picked); under them, new features per page. The forecasts are "
        "checked on the store's own pages: made from the first 10, 25 and 50 % of the pages (in the order of "
        f"ingest, and in {inputs.forecasts['shuffles']} seeded shuffles) and compared with all of them.",))]
    for order, (curves, summaries) in sorted(inputs.saturation.items()):
        blocks.append(_growth_figure(order, curves, summaries))
    blocks.append(_all_pages_checks(inputs.forecasts))
    if inputs.forecasts["errors"]:
        blocks.append(_category_checks(inputs.forecasts))
    else:
        blocks.append(Text((f"No category has {inputs.forecasts['min_pages']:,} pages or more: the checks above "
                            "are of all pages only.",), notice=True))
    blocks.append(_store_forecast(inputs.forecasts))
    return Section("growth", "Growth curves and their validated forecasts", blocks)


def _growth_figure(order: int, curves: dict, summaries: dict) -> Figure:
    from .plots import saturation_figure

    categories = [n for n in curves if n is not None]
    largest = sorted(categories, key=lambda n: -summaries[n]["pages"])[:FIGURE_CATEGORIES] if len(categories) > 1 \
        else []
    names = [None, *largest]
    with tempfile.TemporaryDirectory() as tmp:
        image = saturation_figure({n: curves[n] for n in names}, {n: summaries[n] for n in names}, None,
                                  Path(tmp) / "growth.png")[0]
        png = image.read_bytes()
    shown = f"all pages and the {len(largest)} largest categories" if largest else "all pages"
    return Figure(f"growth-order-{order}", png,
                  f"Growth of distinct {_grams(order)}: {shown} (measured), Heaps fits (fitted) and "
                  "the forecast from half the pages (extrapolated); the dotted grey line is 10 features per page.")


def _grams(order) -> str:
    """The features of an n-gram order, in words ("unigrams")."""
    return {1: "unigrams", 2: "bigrams", 3: "trigrams"}.get(int(order), f"{order}-grams")


def _all_pages_checks(forecasts: dict) -> Table:
    """Errors of each method's forecast of all pages: in the order of ingest, and the
    median |error| over the shuffles."""
    fractions = sorted({c["fraction"] for c in forecasts["checks"]})
    errors: dict = {}
    for c in forecasts["checks"]:
        if c["category"] is None and c["relative_error"] is not None:
            kind = "ingest" if c["pages_order"] == "ingest" else "shuffled"
            errors.setdefault((c["order"], c["method"], kind), {}).setdefault(c["fraction"], []).append(
                c["relative_error"])
    rows = []
    for (order, method, kind), by_fraction in sorted(errors.items()):
        cells = []
        for f in fractions:
            e = by_fraction.get(f)
            cells.append(None if e is None else Num(e[0], "measured", "signed") if kind == "ingest"
                         else Num(float(np.median(np.abs(e))), "measured", "pct"))
        rows.append((FORECAST_NAMES[method], _grams(order), "ingest (error)" if kind == "ingest" else
                     "shuffled (median |error|)", *cells))
    return Table(("method", "n-grams", "pages in order of", *(f"from {f:.0%}" for f in fractions)), rows,
                 "Forecasts of all pages' distinct features from their first 10/25/50 %, against the count "
                 "(accum forecast, all pages).")


def _category_checks(forecasts: dict) -> Table:
    fractions = sorted({e["fraction"] for e in forecasts["errors"]})
    rows: dict = {}
    for e in forecasts["errors"]:
        key = (FORECAST_NAMES[e["method"]], _grams(e["order"]), e["pages_order"])
        rows.setdefault(key, [None] * len(fractions))[fractions.index(e["fraction"])] = (
            Num(e["median_abs_error"], "measured", "pct"), " (", Num(e["max_abs_error"], "measured", "pct"), ")")
    n = forecasts["errors"][0]["forecasts"]
    return Table(("method", "n-grams", "pages in order of", *(f"from {f:.0%}" for f in fractions)),
                 [(*key, *cells) for key, cells in rows.items()],
                 f"The same checks on each category with {forecasts['min_pages']:,} pages or more: median "
                 f"(largest) |error| over {n} forecasts.")


def _store_forecast(forecasts: dict) -> Table:
    """The store's forecast of all pages at 2x and 10x: the method its own checks chose."""
    rows = []
    for c in forecasts["current"]:
        if c["category"] is not None:
            continue
        row = [_grams(c["order"]), Num(c["distinct"], "measured", "int")]
        for ahead, chosen in forecasts["chosen"].items():
            row += [FORECAST_NAMES[chosen["method"]] if chosen else "none checked",
                    Num(c["predicted"][ahead], "extrapolated", "int") if chosen else None,
                    Num(chosen["median_abs_error"], "measured", "pct") if chosen else None]
        rows.append(row)
    columns = ["n-grams", "distinct features now"]
    for ahead in forecasts["chosen"]:
        columns += [f"method at {ahead}", f"features at {ahead} the pages", f"its median |error| at {ahead}"]
    return Table(tuple(columns), rows, "The store's own forecast of all pages' features: at each multiple, the "
                                       "method whose checks erred least there (accum forecast).")


# -- where growth levels off --------------------------------------------------------------


def _levelling(inputs: Inputs) -> Section:
    curves, summaries = inputs.saturation[1]
    names = [None, *sorted((n for n in summaries if n is not None), key=lambda n: -summaries[n]["pages"])]
    rows = [_levelling_row(curves[n], summaries[n]) for n in names]
    blocks = [
        Text(("Blekko's accumulators \"added vectors rapidly for the first 10,000 pages and then added fewer and "
              "fewer\", approaching \"maybe a decimal order wider than the number of documents\" (about ",
              Num(BLEKKO_FEATURES_PER_PAGE, "cited", "exact"), " features per page). Here, a category levels off at "
              "the page after which fewer than one new feature seen at least twice arrives per page, for good.")),
        Table(("category", "pages", "distinct unigrams", "per page", "seen ≥ 2 times, per page",
               "new per page (last 10 %)", "new seen ≥ 2, per page", "levels off at page", "features per page there",
               "Chao1 floor of the asymptote"), rows,
              "Unigrams per category, from the growth log; Chao1 is a floor on the distinct features unlimited "
              "pages would show (extrapolated)."),
    ]
    blocks += [_levelling_summary(curves[None], summaries[None]), *_asymptote_blocks(inputs.asymptote)]
    return Section("levelling", "Where growth levels off, and at what features per page", blocks)


def _levelling_summary(curve, s: dict) -> Text:
    """All pages in a sentence: features per page now, new ones per page, levelled off or not."""
    at = s["saturated_at_pages"]
    said = ("All pages now hold ", Num(s["features_per_page"], "measured"), " distinct unigrams per page (",
            Num(s["pruned_features_per_page"], "measured"), " seen at least twice) and add ",
            Num(s["new_per_page"], "measured"), " new ones per page")
    if at is None:
        return Text(said + ("; they have not levelled off.",))
    return Text(said + ("; they levelled off at page ", Num(at, "measured", "int"), ", at ",
                        _features_per_page_at(curve, at), " features per page."))


def _features_per_page_at(curve, pages: int) -> Num:
    """Distinct features per page at a page count of the growth log."""
    i = int(np.searchsorted(curve.pages, pages))
    return Num(curve.distinct[i] / curve.pages[i], "measured")


def _levelling_row(curve, s: dict) -> tuple:
    at = s["saturated_at_pages"]
    return ("all pages" if s["category"] is None else s["category"], Num(s["pages"], "measured", "int"),
            Num(s["distinct"], "measured", "int"), Num(s["features_per_page"], "measured"),
            Num(s["pruned_features_per_page"], "measured"), Num(s["new_per_page"], "measured"),
            Num(s["new_pruned_per_page"], "measured"),
            Num(at, "measured", "int") if at is not None else "not yet",
            _features_per_page_at(curve, at) if at is not None else None,
            Num(s["chao1"]["estimate"], "extrapolated"))


def _asymptote_blocks(asymptote: list) -> list:
    """Features per page as all pages accumulate (the shape of Blekko's curve), then per
    category: where new features per page fell below each threshold for good, and the new
    features as many pages again would bring (accum asymptote)."""
    levels = list(asymptote[0]["scales"][-1]["at_least"])
    thresholds = list(asymptote[0]["rate_below"])
    growing = Table(("first pages", *(f"held by ≥ {k} pages, per page" for k in levels)),
                    [(format_number(scale["pages"], "int"),
                      *(Num(scale["at_least"][k], "measured") for k in levels)) for scale in asymptote[0]["scales"]],
                    "All pages, in the order of ingest: distinct unigrams held by at least k of the first pages, "
                    "divided by those pages.")
    rows = []
    for a in sorted(asymptote, key=lambda a: (a["category"] is not None, -a["pages"])):
        last = a["scales"][-1]["at_least"] if a["scales"] else {}
        u = a["unseen"]
        rows.append((
            "all pages" if a["category"] is None else a["category"], Num(a["pages"], "measured", "int"),
            *(Num(last.get(k), "measured") for k in levels),
            *(Num(a["rate_below"][t], "measured", "int") if a["rate_below"][t] is not None else "not yet"
              for t in thresholds),
            (Num(u["estimate"], "extrapolated"), " (", Num(u["low"], "extrapolated"), "–",
             Num(u["high"], "extrapolated"), ")")))
    by_category = Table(
        ("category", "pages", *(f"held by ≥ {k}, per page" for k in levels),
         *(f"under {format_number(float(t), 'exact')} new per page from page" for t in thresholds),
         "new as many pages again would bring (95 %)"), rows,
        f"Unigrams per page at all of each category's pages; the page from which every later stretch of the growth "
        f"log added fewer new features per page; the {FORECAST_NAMES[asymptote[0]['unseen']['method']]} estimate of "
        "what doubling the pages would add, for pages drawn like these (a crawl that moves on to new sites brings "
        "more).")
    return [growing, by_category]


# -- parameters ------------------------------------------------------------------------------


def _parameters(c: dict, error_at_10x: Table | None = None, figure: bool = True) -> Section:
    """The parameters now and extrapolated; ``error_at_10x``: the forecasts' measured
    error beside them (:func:`_error_at_10x`), when the forecasts were checked."""
    fits = Table(("n-grams", "K", "β", "R²", "points", "from page"),
                 [(_grams(order), Num(f["K"], "fitted"), Num(f["beta"], "fitted", "fixed"), Num(f["r2"], "fitted", "fixed"),
                   Num(f["points"], "fitted", "int"), Num(f["from_pages"], "fitted", "int"))
                  for order, f in c["fitted"].items()],
                 "Heaps' law V = K·tokens^β fitted on the growth log of all pages, per n-gram order.")
    per_feature = c["measured"]["classifier"]["parameters"] / c["measured"]["classifier"]["features"]
    grid = Table(("pages", "features", "features per page", "parameters (counts)", "how far"),
                 [(format_number(r["pages"], "exact"), Num(r["features"], "extrapolated"),
                   Num(r["features"] / r["pages"], "extrapolated"), Num(r["parameters"], "extrapolated"),
                   r["kind"].replace("2x", "twice the pages"))
                  for r in c["extrapolated"]],
                 "An accumulator for N pages like these: the Heaps fits above summed over the orders, at this "
                 "store's tokens per page, each feature taking the parameters it takes here.")
    blocks = [Text(("Now: ", Num(c["measured"]["pages"], "measured", "int"), " pages, ",
                    Num(c["measured"]["classifier"]["features"], "measured", "int"), " distinct features, ",
                    Num(c["measured"]["classifier"]["parameters"], "measured", "int"), " parameters (non-zero counts, ",
                    Num(per_feature, "measured"), " per feature).")), fits, grid]
    if figure:
        blocks.insert(0, _capacity_figure(c))
    if error_at_10x is not None:
        blocks.append(error_at_10x)
    return Section("parameters", "Parameters the accumulator needs at 10⁶ … 4·10¹⁰ pages", blocks)


def _capacity_figure(c: dict) -> Figure:
    from .plots import capacity_figure

    with tempfile.TemporaryDirectory() as tmp:
        png = capacity_figure(c["accumulator_growth"], c["extrapolated"], c["llms"], Path(tmp) / "cap.png").read_bytes()
    return Figure("capacity", png, "Parameters against pages: the accumulator measured along its growth log and "
                                   "extrapolated by Heaps' law; each LLM at the pages it could hold verbatim at 3.6 "
                                   "bits per parameter (extrapolated).")


def _error_at_10x(inputs: Inputs) -> Table:
    """How far forecasts over 10x the pages were off on this store: Heaps' law (the
    extrapolation's own method) fitted on the first tenth, and the store's 10x forecast."""
    rows = []
    for order, (_, summaries) in sorted(inputs.saturation.items()):
        tenth = [f for f in summaries[None]["forecast_heaps"] if f["fraction"] == 0.1]
        if tenth:
            rows.append(("Heaps' law fitted on the first 10 % (the extrapolation's method)", _grams(order),
                         "ingest", "error", Num(tenth[0]["relative_error"], "measured", "signed")))
    chosen = inputs.forecasts["chosen"].get("10x")
    if chosen:
        method = FORECAST_NAMES[chosen["method"]]
        for c in inputs.forecasts["checks"]:
            if c["category"] is None and c["pages_order"] == "ingest" and c["fraction"] == chosen["fraction"] \
                    and c["method"] == chosen["method"]:
                rows.append((f"{method} from the first 10 % (the store's 10× forecast)", _grams(c["order"]), "ingest",
                             "error", Num(c["relative_error"], "measured", "signed")))
        rows.append((f"{method} from the first 10 % of each category", "worse order", chosen["pages_order"],
                     "median |error|", Num(chosen["median_abs_error"], "measured", "pct")))
    return Table(("forecast of all pages from a tenth of them", "n-grams", "pages in order of", "measured as",
                  "at 10×"),
                 rows, "The forecast's measured error at 10×, beside the extrapolation: the same kind of forecast, "
                       "made on this store from a tenth of its pages and checked against all of them.")


# -- recall ---------------------------------------------------------------------------------


def _recall(capacity: dict, neural: dict | None) -> Section:
    m = capacity["measured"]
    c = m["classifier"]
    orders = " and ".join(_grams(k) for k in c["parameters_by_order"])
    rows = [(f"classifier counts ({orders})", Num(c["parameters"], "measured", "int"),
             Num(c["count_bits_compressed"] / c["parameters"], "measured"), "gives no text back", None, None, None)]
    blocks = []
    g = m.get("generator")
    if g is not None:
        r = g["recall"]
        rows.append((f"text generator (order {g['order']})", Num(g["parameters"], "measured", "int"),
                     Num(g["count_bits_compressed"] / g["parameters"], "measured"),
                     _extractable(r["extractable"], *r["ci95"], r["samples"]), Num(r["samples"], "measured", "int"),
                     Num(r["recalled_bits"], "measured"), Num(r["recalled_bits_per_parameter"], "measured")))
    else:
        blocks.append(Text(("This store keeps no text generator, so what its counts give back verbatim is not "
                            "measured: ingest with --markov-order 8 into a new --store.",), notice=True))
    blocks.insert(0, Table(("model", "parameters", "stored bits per parameter", "extractable (95 % interval)",
                            "prompts", "bits given back", "bits given back per parameter"), rows,
                           "Prompted extraction (k = 32 tokens of prompt, the next m = 50 by greedy decoding) at "
                           "seeded positions of the store's pages; bits given back: the extractable share of the "
                           "pages' compressed bits. Stored bits: the counts compressed (zlib)."))
    blocks += _neural_blocks(neural, m["pages"], g is not None)
    return Section("recall", "Recall per stored parameter: the counts and a neural model", blocks)


def _extractable(rate: float, low: float, high: float, prompts: int):
    """A recall rate with its 95 % interval; words when no page was long enough for a prompt."""
    if not prompts:
        return "no page holds a prompt and its continuation"
    return (Num(rate, "measured", "pct"), " (", Num(low, "measured", "pct"), "–", Num(high, "measured", "pct"), ")")


def _neural_blocks(neural: dict | None, pages: int, generator: bool) -> list:
    """The transformers ``accum capacity --neural`` trained on the store's pages, beside
    the generator answering the same prompts (it needs one: its tokens are the models')."""
    if neural is None:
        missing = NEURAL_MISSING if generator else NEURAL_NEEDS_GENERATOR
        return [Text((f"Neural model trained on the same pages: {missing}.",), notice=True)]
    p, g = neural["protocol"], neural["generator"]
    rows = [(f"{s['name']}: {s['layers']} layers × {s['d_model']}, {s['heads']} heads",
             Num(s["parameters"], "measured", "int"), Num(s["train_tokens"], "measured", "int"),
             Num(s["epochs"], "measured"), Num(s["cross_entropy_bits_per_token"], "measured"),
             Num(s["information_bits"], "measured"), Num(s["bits_per_parameter"], "measured"),
             _rate(s["recall"]), _rate(s["slice"]["recall"]))
            for s in neural["sizes"]]
    rows.append((f"n-gram generator (order {g['order']})", Num(g["parameters"], "measured", "int"),
                 None, None, None, None, None, _rate(g["recall"]), None))
    stale = [] if neural["pages"] == pages else [Text((
        "These models were trained when the store had ", Num(neural["pages"], "measured", "int"), " pages; it has ",
        Num(pages, "measured", "int"), " now: run `accum capacity --neural` again.",), notice=True)]
    return stale + [
        Text(("Transformers trained on the store's ", Num(neural["pages"], "measured", "int"), " pages (",
              Num(neural["text_tokens"], "measured", "int"), " tokens of the generator's tokeniser), asked the same ",
              Num(g["recall"]["n"], "measured", "int"), " prompts as the generator, with the same rule for a hit. "
              "Information: ", neural["information"], "; its bits per parameter set against ",
              Num(neural["reference_bits_per_parameter"], "cited", "exact"),
              f" at capacity ({neural['reference']}). The slice: a model of the same size trained for many epochs on "
              "the windows of a few of the prompts alone, asked them again once it has memorised them.")),
        Table(("model", "parameters", "training tokens", "epochs", "cross-entropy (bits/token)", "information (bits)",
               "bits per parameter", "extractable (95 % interval)", "extractable, slice"), rows,
              f"accum capacity --neural (torch {neural['torch']}): {p['prompt_protocol']} prompts, k = "
              f"{p['prefix']}, m = {p['continuation']}, seed {p['seed']}, greedy decoding."),
    ]


def _rate(r: dict):
    """:func:`_extractable` of a recall dict of :mod:`accum.neural`."""
    return _extractable(r["rate"], r["low"], r["high"], r["n"])


# -- LLMs and the answer ----------------------------------------------------------------------


def _llms(capacity: dict) -> Section:
    rows = [(r["model"], Num(r["parameters"], "cited", "exact"),
             Num(r["active_parameters"], "cited", "exact") if r["active_parameters"] else None,
             Num(r["training_tokens"], "cited", "exact") if r["training_tokens"] else None,
             Num(r["capacity_bits"], "extrapolated"), Num(r["knowledge_bits"], "extrapolated"),
             Num(r["pages_verbatim_at_capacity"], "extrapolated"), r["source"])
            for r in sorted(capacity["llms"], key=lambda r: r["parameters"])]
    return Section("llms", "LLMs and the pages they could hold", [
        Text(("Capacity at ", Num(BITS_PER_PARAMETER, "cited", "exact"), " bits per parameter (Morris et al. 2025, measured on "
              "models far smaller than most of these, hence extrapolated) and knowledge at ",
              Num(KNOWLEDGE_BITS_PER_PARAMETER, "cited", "exact"), " bits per parameter (Allen-Zhu & Li 2024); pages: the "
              "capacity over this store's measured compressed bits per page.")),
        Table(("model", "parameters", "active parameters", "training tokens", "capacity (bits)", "knowledge (bits)",
               "pages like these, verbatim", "source"), rows, "The LLM table (accum/data/llms.csv or --llm-table)."),
    ])


def _answer(capacity: dict, neural: dict | None) -> Section:
    a = _answer_numbers(capacity)
    rows = [
        ("parameters of the model", Num(a["parameters"], "cited", "exact"), "the question"),
        ("documents to recall", Num(a["documents"], "cited", "exact"), "the question"),
        ("bits a parameter holds at capacity", Num(BITS_PER_PARAMETER, "cited", "exact"), "Morris et al. 2025"),
        ("bits the model holds", Num(a["capacity_bits"], "extrapolated"), "parameters × bits per parameter"),
        ("bits a page takes, compressed", Num(a["bits_per_page"], "measured", "int"), "this store's pages, zlib -9"),
        ("pages the model could hold verbatim", Num(a["pages_at_capacity"], "extrapolated"), "bits ÷ bits per page"),
        ("share of the 40B documents", Num(a["share_of_documents"], "extrapolated", "pct"), ""),
        ("parameters 40B such pages would need", Num(a["parameters_for_documents"], "extrapolated"),
         "40B × bits per page ÷ bits per parameter"),
        ("counts an accumulator like this store's needs for 40B pages", Num(a["accumulator_parameters"], "extrapolated"),
         f"Heaps' law fitted here, {a['accumulator_kind']}"),
    ]
    verdict = [
        "Yes: pages this small fit, " if a["recalls_all"] else "No. ",
        "At full capacity, with nothing but these pages to hold, 400B parameters hold about ",
        Num(a["pages_at_capacity"], "extrapolated"), " pages like these, ",
        Num(a["share_of_documents"], "extrapolated", "pct"), " of 40B; 40B of them would take ",
        Num(a["parameters_for_documents"], "extrapolated"), " parameters. An accumulator like this store's "
        "classifier would need ", Num(a["accumulator_parameters"], "extrapolated"), " counts for 40B pages",
        ", so 400B parameters that worked like its counts would have room for them; but "
        if a["accumulator_parameters"] <= a["parameters"] else ", more than 400B; and ",
        "counts of ", " and ".join(_grams(k) for k in capacity["measured"]["classifier"]["parameters_by_order"]),
        " give no page back. "]
    g = capacity["measured"].get("generator")
    if g is None:
        verdict.append("What a count table of long n-grams gives back is not measured on this store (no generator).")
    else:
        rows += _generator_steps(g, a["bits_per_page"])
        verdict += _generator_verdict(g, rows[-1][1])
    sizes = (neural or {}).get("sizes", [])
    for s in sizes:
        rows.append((f"bits per parameter of the neural model {s['name']}", Num(s["bits_per_parameter"], "measured"),
                     "trained on this store's pages, above"))
    if sizes:
        largest = max(sizes, key=lambda s: s["parameters"])
        verdict += [f" The largest transformer trained on these pages ({largest['name']}, ",
                    Num(largest["parameters"], "measured", "int"), " parameters) holds ",
                    Num(largest["bits_per_parameter"], "measured"), " bits of them per parameter and gives back ",
                    Num(largest["recall"]["rate"], "measured", "pct"), " of the same prompts."]
    return Section("answer", "Would a 400B-parameter model recall 40B documents?", [
        Table(("step", "value", "from"), rows, "The answer, step by step."), Text(tuple(verdict))])


def _generator_steps(g: dict, bits_per_page: float) -> list:
    """The generator's recalled bits per parameter, and the parameters 40B pages would
    take at that rate (None when it gave nothing back)."""
    per_parameter = g["recall"]["recalled_bits_per_parameter"]
    return [("bits the store's generator gives back per parameter", Num(per_parameter, "measured"),
             "prompted extraction, above"),
            ("parameters a count table would need to give back 40B such pages at that rate",
             Num(40e9 * bits_per_page / per_parameter if per_parameter else None, "extrapolated"),
             "40B × bits per page ÷ bits given back per parameter")]


def _generator_verdict(g: dict, needed: Num) -> list:
    r = g["recall"]
    said = [f"The store's order-{g['order']} generator, a count table that does give text back, returns ",
            Num(r["extractable"], "measured", "pct"), " of prompts verbatim, ",
            Num(r["recalled_bits_per_parameter"], "measured"), " bits per parameter against ",
            Num(BITS_PER_PARAMETER, "cited", "exact"), " for an LLM at capacity"]
    if needed.value is None:
        return said + ["."]
    return said + ["; at that rate 40B pages would take ", needed, " parameters."]


# -- rendering ------------------------------------------------------------------------------


CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1d2330;
  max-width:1180px;margin:0 auto;padding:24px 28px 60px;background:#fff}
h1{font-size:26px;line-height:1.25;margin:0 0 8px}h2{font-size:20px;margin:36px 0 10px;
  padding-top:12px;border-top:1px solid #d8dde6}
nav{margin:14px 0 6px;font-size:14px}nav a{margin-right:14px;color:#2456a4;text-decoration:none}
p{margin:10px 0}p.notice{background:#fff7e0;border-left:4px solid #e0a800;padding:8px 12px}
.legend{font-size:13px;color:#444}
table{border-collapse:collapse;margin:12px 0 4px;font-size:13px;width:auto;max-width:100%}
th,td{border-bottom:1px solid #e3e6ec;padding:4px 9px;vertical-align:top}
thead th{background:#f1f4f9;text-align:left;font-weight:600;border-bottom:2px solid #c9d0dc}
tbody th{text-align:left;font-weight:500;white-space:nowrap}td.num{text-align:right;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfd}
caption{caption-side:bottom;text-align:left;font-size:12.5px;color:#555;padding-top:5px}
.k{display:inline-block;font-size:9.5px;font-weight:700;line-height:1;padding:2px 3px;margin-left:3px;
  border-radius:3px;vertical-align:1px;color:#fff;font-family:ui-monospace,monospace}
.k-measured{background:#2f6fba}.k-fitted{background:#7b4bb7}.k-extrapolated{background:#d2691e}.k-cited{background:#3c8d5a}
figure{margin:16px 0}figure img{max-width:100%;height:auto;border:1px solid #e3e6ec}
figcaption{font-size:12.5px;color:#555}.scroll{overflow-x:auto}
"""
#: Nothing may be fetched: images are data URIs, the style is inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    def inline(part) -> str:
        if isinstance(part, Num):
            if part.value is None:
                return format_number(None)
            return (f'{html.escape(part.text)}<span class="k k-{part.kind}" title="{part.kind}">'
                    f"{BADGES[part.kind]}</span>")
        if isinstance(part, tuple):
            return "".join(inline(p) for p in part)
        return html.escape("" if part is None else str(part))

    def block(b) -> str:
        if isinstance(b, Text):
            return f'<p{" class=notice" if b.notice else ""}>{inline(b.parts)}</p>'
        if isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            return (f'<figure id="figure-{b.name}"><img src="data:image/png;base64,{data}" '
                    f'alt="{html.escape(b.caption)}"><figcaption>{html.escape(b.caption)}</figcaption></figure>')
        head = "".join(f"<th>{html.escape(c)}</th>" for c in b.columns)
        body = "".join(
            f'<tr><th scope="row">{inline(row[0])}</th>'
            + "".join(f'<td class="{"num" if _is_number_cell(c) else "text"}">{inline(c)}</td>' for c in row[1:])
            + "</tr>" for row in b.rows)
        return (f'<div class="scroll"><table><caption>{html.escape(b.caption)}</caption><thead><tr>{head}</tr>'
                f"</thead><tbody>{body}</tbody></table></div>")

    legend = "; ".join(f'<span class="k k-{k}">{BADGES[k]}</span> {k}: {html.escape(words)}'
                       for k, words in KINDS.items())
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in report.sections)
    sections = "".join(f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>{"".join(block(b) for b in s.blocks)}'
                       "</section>" for s in report.sections)
    references = "".join(f"<li>{html.escape(text)}" + (f' <a href="{html.escape(link)}">{html.escape(link)}</a>'
                                                       if link else "") + "</li>" for text, link in report.references)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>"
            f"<h1>{html.escape(report.title)}</h1><p>{inline(report.about.parts)}</p>"
            f'<p class="legend">{legend}</p><nav>{nav}</nav>{sections}'
            f'<section id="sources"><h2>Sources</h2><ul>{references}</ul></section></body></html>\n')


def _is_number_cell(cell) -> bool:
    return isinstance(cell, Num) or (isinstance(cell, tuple) and any(isinstance(p, Num) for p in cell))


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#])")


def render_markdown(report: Report, figure_prefix: str | None) -> tuple[str, dict[str, bytes]]:
    """The report as Markdown, and its figures: file name -> PNG bytes, each named
    ``<figure_prefix><figure name>.png`` and referred to by that relative name (left out
    with no prefix: text for a terminal)."""
    def inline(part) -> str:
        if isinstance(part, Num):
            return part.text if part.value is None else f"{part.text}{MARKS[part.kind]}"
        if isinstance(part, tuple):
            return "".join(inline(p) for p in part)
        return _MD_SPECIAL.sub(r"\\\1", re.sub(r"\s+", " ", "" if part is None else str(part)))

    files = {}
    lines = [f"# {inline(report.title)}", "", inline(report.about.parts), "",
             "Every number is marked: " + "; ".join(f"{MARKS[k]} {k}: {words}" for k, words in KINDS.items()) + ".",
             ""]
    for s in report.sections:
        lines += [f"## {inline(s.title)}", ""]
        for b in s.blocks:
            if isinstance(b, Text):
                lines += [("> **Note.** " if b.notice else "") + inline(b.parts), ""]
            elif isinstance(b, Figure):
                if figure_prefix is None:
                    continue
                name = f"{figure_prefix}{b.name}.png"
                files[name] = b.png
                lines += [f"![{b.name}]({name})", "", f"*{inline(b.caption)}*", ""]
            else:
                numeric = [any(_is_number_cell(r[i]) for r in b.rows) for i in range(len(b.columns))]
                lines += ["| " + " | ".join(inline(c) for c in b.columns) + " |",
                          "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"]
                lines += ["| " + " | ".join(inline(c) for c in row) + " |" for row in b.rows]
                lines += ["", f"*{inline(b.caption)}*", ""]
    lines += ["## Sources", ""]
    lines += [f"- {inline(text)}" + (f" <{link}>" if link else "") for text, link in report.references]
    return "\n".join(lines) + "\n", files
