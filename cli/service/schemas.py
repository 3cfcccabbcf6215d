"""Request and response shapes of the HTTP service (pydantic, so ``/openapi.json`` documents them).

The response shapes mirror the CLI's ``--json`` documents field for field: a
``/classify`` answer is :meth:`accum.classify.Prediction.to_dict` plus ``model`` and
``alpha`` (as ``accum classify --json``), ``/saturation`` is what ``accum saturation
--json`` writes, ``/info`` and ``/categories`` are :meth:`accum.storage.Store.info` and
:meth:`accum.storage.Store.categories`. The service adds only ``snapshot`` (the snapshot
that answered) and, in ``/info``, its own state.

The caps that depend on ``accum serve`` options (batch size, generation length) are set
by :func:`request_models`, so the schema states the numbers in force.
"""


from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from accum.names import MODEL_NAMES
from accum.pages import MAX_LABEL_BYTES, check_label

ModelName = Literal[MODEL_NAMES]  # every model a user can name (accum.names)

#: Largest ``alpha`` a request may ask for (beyond it every model is uniform).
MAX_ALPHA = 1e6
#: Largest ``top`` and ``terms`` a request may ask for.
MAX_TOP = 1000
MAX_LABEL_CHARS = 200
MAX_URL_CHARS = 4096


# -- /classify ----------------------------------------------------------------------------


class TopCategory(BaseModel):
    label: str
    probability: float


class FeatureTerm(BaseModel):
    feature: str = Field(description="The n-gram as words.")
    order: int = Field(description="1 for a word, 2 for a bigram, ...")
    count: int = Field(description="Occurrences counted in the text (1 for complement: presence).")
    contribution: float = Field(description="Its exact share of the log-odds of winner over runner-up.")


class Explanation(BaseModel):
    """``log_odds == prior + sum(features[].contribution) + rest`` (to rounding)."""

    model_config = ConfigDict(extra="allow")

    winner: str
    runner_up: str
    log_odds: float
    prior: float
    features: list[FeatureTerm]
    rest: float = Field(description="Sum of the contributions of the features not listed.")
    n_features: int = Field(description="Features of the text seen in training.")
    n_unseen: int = Field(description="Features never seen in training (no evidence).")


class LabelInSet(BaseModel):
    """A category of a page's label set."""

    label: str
    probability: float
    threshold: float = Field(description="Its threshold, fitted by accum calibrate (the top category is kept "
                                         "even below it when no category reaches its own).")


class ClassifyResult(BaseModel):
    """One text's answer: :meth:`accum.classify.Prediction.to_dict` (fields it adds later pass through)."""

    model_config = ConfigDict(extra="allow")

    label: str | None = Field(None, description="The most probable category (null when it abstained).")
    confidence: float | None = Field(None, description="Calibrated chance that label is right.")
    abstained: bool | None = Field(None, description="True when confidence is below min_confidence.")
    top: list[TopCategory] | None = Field(None, description="Top categories, best first.")
    labels: list[LabelInSet] | None = Field(None, description="The label set, present when multi_label was asked.")
    explanation: Explanation | None = Field(None, description="Present when explain was asked.")


class ClassifyResponse(ClassifyResult):
    """One text: ``label``, ``top`` (and ``explanation``) as ``accum classify --json``.
    A batch: ``results``, one per text in order."""

    results: list[ClassifyResult] | None = Field(None, description="The answers of a batch (texts).")
    model: ModelName
    alpha: float | None = Field(description="The model's smoothing (null for the trained models, svm and nbsvm).")
    snapshot: str | None = Field(None, description="The store snapshot that answered.")


# -- /documents ----------------------------------------------------------------------------


class DocumentIn(BaseModel):
    url: str = Field(max_length=MAX_URL_CHARS, description="Where the page came from (kept in the catalog).")
    label: str = Field(description=f"Its category: not blank, no control characters or line breaks, at most "
                                   f"{MAX_LABEL_BYTES:,} bytes in UTF-8 (the rule of accum ingest).")
    text: str = Field(description="The page's text (already extracted from HTML).")

    @field_validator("label")
    @classmethod
    def _valid_label(cls, value: str) -> str:
        """The engine's label rule, so that the API and ``accum ingest`` refuse the same
        labels for the same reason (the 422 carries its message)."""
        return check_label(value)

    @field_validator("url")
    @classmethod
    def _storable_url(cls, value: str) -> str:
        if any(ch == "\x00" or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
            raise ValueError("url must not contain NUL characters or lone surrogates")
        return value


class IngestResponse(BaseModel):
    """The ingest summary, as ``accum ingest --json`` writes it."""

    model_config = ConfigDict(extra="allow")

    pages_seen: int
    pages_added: int
    duplicates: int = Field(description="Pages whose text the store already had: they add nothing.")
    skipped: dict[str, int] = Field(description="Pages not used, by reason (e.g. empty).")
    skip_examples: dict[str, str]
    bytes_read: int
    tokens: int
    seconds: float
    mb_per_s: float
    tokens_per_s: float
    checkpoints: int
    store: str
    categories: int
    documents: int
    run: int
    snapshot: str | None = Field(None, description="The snapshot the service answers from after this ingest.")


# -- /generate ------------------------------------------------------------------------------


class GenerateResponse(BaseModel):
    """What ``accum generate --json`` writes, plus the snapshot."""

    model_config = ConfigDict(extra="allow")

    text: str
    seed: int = Field(description="The seed used (drawn when none was given): pass it again for the same text.")
    category: str | None
    order: int = Field(description="The generator's n-gram order.")
    method: str
    tokens: int
    prompt: str | None
    snapshot: str | None = None


# -- /categories, /info, /healthz -----------------------------------------------------------


class Category(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str
    documents: int
    tokens: int
    features: int = Field(description="Distinct features (unigrams and n-grams) with a non-zero count.")


class Limits(BaseModel):
    max_body_bytes: int
    max_batch: int
    max_generate_tokens: int
    timeout_seconds: float


class InfoResponse(BaseModel):
    """:meth:`accum.storage.Store.info` plus the service's own state."""

    model_config = ConfigDict(extra="allow")

    store: str
    catalog: str
    settings: dict[str, Any] | None
    documents: int
    categories: int
    tokens: int
    distinct_features: int
    parameters: int
    bytes: int
    snapshot: str | None = Field(description="The newest registered snapshot in the catalog.")
    model_choice: dict[str, Any] | None = Field(
        description="The model the store chose and why: by cross-validation on its pages (its expected accuracy "
                    "with a 95 % interval, every candidate's), or its default before any fit (accum info --json).")
    runs: list[dict[str, Any]]
    served_snapshot: str | None = Field(description="The snapshot the service answers from.")
    ready_seconds: float | None = Field(description="Seconds from the start of accum serve to ready (warm).")
    model: ModelName | None = Field(description="The default model (null: no model until the store has categories).")
    alpha: float | None = Field(description="The default model's smoothing (null: the model's default).")
    writes: bool = Field(description="Whether POST /documents is on (a token is configured).")
    generation: bool = Field(description="Whether the store keeps a text generator for POST /generate.")
    limits: Limits


class Health(BaseModel):
    status: Literal["ok"]
    snapshot: str | None
    categories: int


# -- /saturation ----------------------------------------------------------------------------


class HeapsFit(BaseModel):
    K: float
    beta: float
    r2: float
    points: int
    from_pages: int


class Chao1(BaseModel):
    estimate: float
    low: float
    high: float


class Forecast(BaseModel):
    fraction: float
    fit_pages: int
    predicted: float
    actual: int
    relative_error: float | None
    extrapolation: float
    beyond_2x: bool


class HeapsForecast(Forecast):
    """A Heaps fit of the rows up to the cutoff, evaluated at the target tokens."""

    target_tokens: float
    heaps: HeapsFit


class SaturationSummary(BaseModel):
    """:func:`accum.saturation.summarize` of one curve (``at_least_K`` for the store's prune_k
    is an extra field)."""

    model_config = ConfigDict(extra="allow")

    category: str | None
    order: int
    pages: int
    tokens: int
    distinct: int
    at_least_2: int
    singletons: int
    doubletons: int
    features_per_page: float | None
    pruned_features_per_page: float | None
    new_per_page: float | None
    new_pruned_per_page: float | None
    good_turing_new_rate: float | None
    heaps: HeapsFit | None
    heaps_pruned: HeapsFit | None
    chao1: Chao1
    saturation_threshold: float
    saturated_at_pages: int | None
    good_turing_elasticity: float | None
    forecast: list[Forecast]
    forecast_method: str
    forecast_heaps: list[HeapsForecast]


class SaturationResponse(BaseModel):
    """What ``accum saturation --json`` writes (without --shuffles or --plot)."""

    order: int
    threshold: float
    shuffles: int
    overall: SaturationSummary | None = Field(description="All pages (absent when one category was asked).")
    categories: list[SaturationSummary]
    bands: dict[str, Any] | None
    files: list[str]
    snapshot: str | None = None


# -- errors ---------------------------------------------------------------------------------


class ErrorMessage(BaseModel):
    detail: str


class Problem(BaseModel):
    type: str
    loc: list[str | int] = Field(description="Where: body or query, then field names and list positions.")
    msg: str


class ValidationProblem(BaseModel):
    """A 422: what was wrong with the request (the first 20 problems, each cut short)."""

    detail: list[Problem]
    message: str = Field(description="The first problems on one line, and how many more there are.")


# -- requests whose caps come from the command line ---------------------------------------


def request_models(max_batch: int, max_generate_tokens: int):
    """The request models with the caps of this ``accum serve``: (classify, documents, generate)."""

    class ClassifyRequest(BaseModel):
        """Give exactly one of ``text`` or ``texts``."""

        model_config = ConfigDict(extra="forbid", json_schema_extra={
            "oneOf": [{"required": ["text"]}, {"required": ["texts"]}]})

        text: str | None = Field(None, description="One text to classify.")
        texts: list[str] | None = Field(
            None, min_length=1, max_length=max_batch,
            description=f"A batch of texts (at most {max_batch}); the answer has one result per text.")
        top: int = Field(3, ge=1, le=MAX_TOP, description="Categories to return, best first.")
        explain: bool = Field(False, description="Add the exact explanation of the decision.")
        terms: int = Field(10, ge=1, le=MAX_TOP, description="Features listed by the explanation.")
        model: ModelName | None = Field(
            None, description="ridge-complement, complement or dm (default: accum serve's --model, else the store's).")
        alpha: float | None = Field(
            None, gt=0, le=MAX_ALPHA, allow_inf_nan=False,
            description="Smoothing per feature (default: accum serve's --alpha, else the model's default). "
                        "Any other value than the served model's or the model's default builds a model for the "
                        "request and needs the bearer token: 401 without a valid one, 403 when this accum serve "
                        "has none (writes off).")
        min_confidence: float | None = Field(
            None, ge=0, le=1, allow_inf_nan=False,
            description="Abstain (label null) below this calibrated confidence, as accum classify --min-confidence.")
        multi_label: bool = Field(
            False, description="Add labels: every category at or above its threshold, as accum classify --multi-label.")

        @model_validator(mode="after")
        def _one_of(self):
            if (self.text is None) == (self.texts is None):
                raise ValueError("give exactly one of text (one text) or texts (a batch)")
            return self

    DocumentsRequest = Annotated[list[DocumentIn], Field(
        min_length=1, max_length=max_batch,
        description=f"Labelled pages, [{{url, label, text}}, ...] (at most {max_batch}).")]

    class GenerateRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        category: str | None = Field(None, max_length=MAX_LABEL_CHARS,
                                     description="Generate from one category (default: all).")
        length: int = Field(100, ge=1, le=max_generate_tokens,
                            description=f"Tokens to generate (at most {max_generate_tokens}).")
        seed: int | None = Field(None, ge=0, lt=2**63, description="The same seed gives the same text.")
        prompt: str | None = Field(None, max_length=10_000, description="Text to continue.")
        temperature: float = Field(1.0, gt=0, le=100, allow_inf_nan=False,
                                   description="Divides log-probabilities (< 1 sharper, > 1 flatter).")
        top_k: int | None = Field(None, ge=1, le=1_000_000, description="Sample among the k most probable tokens.")
        greedy: bool = Field(False, description="Always take the most probable token.")
        method: Literal["kn", "dirichlet", "mle"] | None = Field(
            None, description="Smoothing (default: the generator's): kn, dirichlet or mle.")

    return ClassifyRequest, DocumentsRequest, GenerateRequest
