"""Neural capacity (``accum capacity --neural``): small decoder-only transformers trained
on a store's pages, measured as ``accum recall`` measures the store's n-gram generator.

The models read the generator's tokens (its tokeniser and vocabulary), so both answer
the same prompts: :meth:`Prompts.draw <accum.markov.recall.Prompts.draw>` with the same
protocol, sample and seed gives the same documents and positions as ``accum recall``.

Measured for each model size:

- **information**: bits = the sum over the store's tokens of
  ``log2 p_unigram(token) - log2 p_model(token | the tokens before it)``, what the model
  knows about its training text beyond the frequency of each token; estimated as the
  mean over a seeded sample of windows of the text (the whole text when it is small)
  times its tokens. Bits per parameter set that against the 3.6 of Morris et al. 2025
  ("How much do language models memorize?", arXiv:2505.24190).
- **recall**: prompted extraction with ``accum recall``'s protocol: a 32-token prompt
  (after the document marker when it starts its page), greedy decoding, a hit when the
  next 50 tokens come out exactly; Wilson 95 % interval. Greedy decoding reproduces the
  text as long as its argmax equals the next token, so one forward pass over prompt and
  continuation decides it.
- **slice**: a fresh model of the same size trained for many epochs on the windows
  (prompt and continuation) of a few of those prompts alone, then asked for them again:
  the recall of text it could memorise.

A model of P parameters spends at most half of them on its transformer blocks (the
widest shape of :data:`SHAPES` that fits) and the rest on token embeddings, tied to the
output layer: the most frequent tokens of the text get one each, the others share one
class, which never counts as reproducing a token.

Importing this module does not import torch; :func:`measure` does.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..capacity import BITS_PER_PARAMETER
from ..markov.recall import Prompts, wilson
from ..markov.tokens import dense_index

PREFIX = 32
CONTINUATION = 50
#: Tokens a model sees at once (a prompt and its continuation fit).
CONTEXT = 128
#: Windows in a training step.
BATCH = 8
#: Peak learning rate times the model's width (narrower models take larger steps).
LEARNING_RATE_WIDTH = 0.32
#: Tokens of the text whose predictions estimate the information held.
EVAL_TOKENS = 1 << 15
#: Prompts of the memorisation slice, and its training epochs.
SLICE_PROMPTS = 16
SLICE_EPOCHS = 100
#: (layers, d_model, heads) by width.
SHAPES = ((1, 16, 2), (2, 32, 2), (2, 64, 2), (4, 128, 4), (4, 192, 4), (6, 256, 4), (6, 320, 5), (8, 384, 6))
REFERENCE = "Morris et al. 2025, arXiv:2505.24190"
INFORMATION = ("bits = sum over the store's tokens of log2 p_unigram(token) - log2 p_model(token | preceding "
               "tokens): what the model holds about its training text beyond token frequencies")
MISSING_TORCH = "accum capacity --neural needs PyTorch: pip install 'accum[neural]'"


def torch_version() -> str:
    """The installed torch's version; ImportError with :data:`MISSING_TORCH` without one."""
    try:
        import torch
    except ImportError as exc:
        raise ImportError(MISSING_TORCH) from exc
    return torch.__version__


@dataclass(frozen=True)
class Shape:
    """A model's layout; ``vocab`` counts the token classes (the shared class included)."""

    layers: int
    d_model: int
    heads: int
    vocab: int
    context: int = CONTEXT

    @staticmethod
    def block_parameters(layers: int, d_model: int) -> int:
        """Two norms, attention (qkv and out, with biases) and a 4x MLP, per layer."""
        return layers * (12 * d_model * d_model + 13 * d_model)

    @property
    def parameters(self) -> int:
        return (self.block_parameters(self.layers, self.d_model)
                + (self.vocab + self.context + 2) * self.d_model)


def learning_rate(shape: Shape) -> float:
    return LEARNING_RATE_WIDTH / shape.d_model


def shape_for(target: int, classes: int) -> Shape:
    """The shape of about ``target`` parameters for a text of ``classes`` token classes:
    the widest of :data:`SHAPES` whose blocks take at most half, the rest in embeddings."""
    fits = [s for s in SHAPES if Shape.block_parameters(s[0], s[1]) <= target / 2] or [SHAPES[0]]
    layers, d_model, heads = fits[-1]
    room = (target - Shape.block_parameters(layers, d_model)) // d_model - CONTEXT - 2
    return Shape(layers, d_model, heads, int(min(classes, max(room, 2))))


def parse_sizes(spec: str, markov) -> list[tuple[str, int]]:
    """``(name, parameters)`` of a comma-separated list of sizes: ``300k``, ``2M``,
    ``10000000``, or ``o4`` for the generator's parameters up to order 4."""
    by_order = np.cumsum([r["counts"] for r in markov.parameters()])
    sizes = []
    for name in (s.strip() for s in spec.split(",") if s.strip()):
        try:
            if name[0] in "oO":
                order = int(name[1:])
                if not 1 <= order <= markov.order:
                    raise ValueError(f"the generator has orders 1 to {markov.order}")
                sizes.append((name, int(by_order[order - 1])))
            else:
                scale = {"k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6}.get(name[-1], 1)
                sizes.append((name, int(float(name[:-1] if scale != 1 else name) * scale)))
        except ValueError as exc:
            raise ValueError(f"bad model size {name!r} (300k, 2M, 10000000 or o4): {exc}") from None
    if not sizes:
        raise ValueError("no model size given")
    return sizes


@dataclass(frozen=True)
class Text:
    """The pages as one sequence of the generator's dense tokens, each page after a
    document marker (the generator's end token); tokens it lacks are ``V``."""

    dense: np.ndarray
    starts: np.ndarray
    marker: int

    @classmethod
    def of(cls, markov, batch) -> "Text":
        vocabulary = markov._vocabulary()
        tokens = dense_index(vocabulary.ids, batch.ids)
        tokens[tokens < 0] = vocabulary.size
        starts = batch.bounds[:-1] + np.arange(1, batch.n_docs + 1)
        dense = np.full(len(tokens) + batch.n_docs, vocabulary.eos, np.int64)
        dense[np.repeat(starts - batch.bounds[:-1], np.diff(batch.bounds)) + np.arange(len(tokens))] = tokens
        return cls(dense, starts, vocabulary.eos)

    def classes(self, n: int) -> np.ndarray:
        """The text in ``n`` classes: 0 shared by the rarer tokens, 1 the marker, then the
        other tokens by falling frequency (ties by dense index)."""
        counts = np.bincount(self.dense, minlength=self.dense.max() + 1)
        counts[self.marker] = -1
        ranked = np.argsort(-counts, kind="stable")[: n - 2]
        table = np.zeros(len(counts), np.int64)
        table[self.marker] = 1
        table[ranked[counts[ranked] > 0]] = np.arange(2, 2 + int((counts[ranked] > 0).sum()))
        return table[self.dense]

    @property
    def n_classes(self) -> int:
        """Classes that hold every token: the distinct tokens plus the shared class."""
        return len(np.unique(self.dense)) + 1


def windows(seq: np.ndarray, begins: np.ndarray, length: int) -> np.ndarray:
    """``seq[b:b + length]`` for each begin, padded with -1 past the end, int64[n, length]."""
    at = np.asarray(begins, np.int64)[:, None] + np.arange(length)
    return np.where(at < len(seq), seq[np.minimum(at, len(seq) - 1)], -1)


def training_batches(seq: np.ndarray, seed: int) -> Iterator[np.ndarray]:
    """Endless batches of :data:`BATCH` windows of ``CONTEXT + 1`` tokens: each epoch cuts
    the text at a new seeded offset and visits its windows in a seeded order."""
    rng = np.random.default_rng(seed)
    pending = np.zeros(0, np.int64)
    while True:
        offset = int(rng.integers(CONTEXT)) if len(seq) > CONTEXT + 1 else 0
        begins = np.arange(offset, max(len(seq) - CONTEXT - 1, offset) + 1, CONTEXT)
        pending = np.concatenate([pending, rng.permutation(begins)])
        while len(pending) >= BATCH:
            yield windows(seq, pending[:BATCH], CONTEXT + 1)
            pending = pending[BATCH:]


@dataclass(frozen=True)
class PromptWindows:
    """Prompt and continuation of each prompt in the text: ``text[begin:end]``, the
    continuation its last :data:`CONTINUATION` tokens."""

    begin: np.ndarray
    end: np.ndarray

    @classmethod
    def of(cls, text: Text, prompts: Prompts) -> "PromptWindows":
        cont = text.starts[prompts.docs] + prompts.pos
        at_start = (prompts.pos == PREFIX).astype(np.int64)  # the marker goes with a page's first tokens
        return cls(cont - PREFIX - at_start, cont + CONTINUATION)

    def take(self, index: np.ndarray) -> "PromptWindows":
        return PromptWindows(self.begin[index], self.end[index])

    def tokens(self, seq: np.ndarray) -> np.ndarray:
        """The windows' tokens, int64[n, longest], -1 after a shorter one's end."""
        lengths = self.end - self.begin
        w = windows(seq, self.begin, int(lengths.max()) if len(lengths) else 1)
        w[np.arange(w.shape[1]) >= lengths[:, None]] = -1
        return w


def proportion(hits: int, n: int) -> dict:
    low, high = wilson(hits, n)
    return {"hits": int(hits), "n": int(n), "rate": hits / n if n else 0.0, "low": low, "high": high}


def recall(model, seq: np.ndarray, at: PromptWindows) -> dict:
    """Prompted extraction at ``at``: a hit when greedy decoding gives all
    :data:`CONTINUATION` tokens (a token of the shared class is never given)."""
    from . import transformer as T

    if len(at.begin) == 0:
        return proportion(0, 0)
    w = at.tokens(seq)
    guess = T.predictions(model, w, 4 * BATCH)
    offsets = (at.end - at.begin - CONTINUATION - 1)[:, None] + np.arange(CONTINUATION)
    truth = np.take_along_axis(w[:, 1:], offsets, 1)
    right = (np.take_along_axis(guess, offsets, 1) == truth) & (truth > 0)
    return proportion(int(right.all(axis=1).sum()), len(w))


def information(model, seq: np.ndarray, seed: int) -> dict:
    """Cross-entropy of the model and of the unigram distribution, bits per token, on
    non-overlapping windows of the text (a seeded sample of :data:`EVAL_TOKENS` tokens
    of them when it is longer), and the bits held (see the module notes)."""
    from . import transformer as T

    begins = np.arange(0, max(len(seq) - 1, 1), CONTEXT)
    if len(begins) * CONTEXT > EVAL_TOKENS:
        begins = np.sort(np.random.default_rng(seed).choice(begins, EVAL_TOKENS // CONTEXT, replace=False))
    w = windows(seq, begins, CONTEXT + 1)
    model_bits = -T.log2_probs(model, w, 4 * BATCH)
    known = ~np.isnan(model_bits)
    unigram = np.bincount(seq) / len(seq)
    base_bits = -np.log2(unigram[w[:, 1:][known]]).mean()
    cross_entropy = float(model_bits[known].mean())
    bits = float((base_bits - cross_entropy) * len(seq))
    return {"cross_entropy_bits_per_token": cross_entropy, "unigram_bits_per_token": float(base_bits),
            "information_bits": bits}


def slice_prompts(n: int) -> np.ndarray:
    """Indices of the memorisation slice's prompts, spread over the ``n`` drawn."""
    if n == 0:
        return np.zeros(0, np.int64)
    return np.unique(np.linspace(0, n - 1, min(SLICE_PROMPTS, n)).round().astype(np.int64))


def memorised(shape: Shape, seq: np.ndarray, prompts: Prompts, at: PromptWindows, seed: int) -> dict:
    """Recall of a model trained :data:`SLICE_EPOCHS` epochs on the windows of the slice
    prompts alone (prompt and continuation, at the positions recall gives them)."""
    from . import transformer as T

    pick = slice_prompts(len(at.begin))
    chosen = at.take(pick)
    model = T.make_model(shape.layers, shape.d_model, shape.heads, shape.vocab, shape.context, seed)
    if len(pick):
        T.train(model, itertools.repeat(chosen.tokens(seq)), SLICE_EPOCHS, learning_rate(shape))
    return {"pages": int(len(np.unique(prompts.docs[pick]))), "prompts": int(len(pick)),
            "tokens": int((chosen.end - chosen.begin).sum()), "epochs": float(SLICE_EPOCHS),
            "recall": recall(model, seq, chosen)}


def measure_size(name: str, target: int, text: Text, prompts: Prompts, tokens: int, seed: int) -> dict:
    """Train, then measure, one model of about ``target`` parameters (see the module notes)."""
    from . import transformer as T

    shape = shape_for(target, text.n_classes)
    seq = text.classes(shape.vocab)
    model = T.make_model(shape.layers, shape.d_model, shape.heads, shape.vocab, shape.context, seed)
    steps = max(1, -(-tokens // (BATCH * CONTEXT)))
    start = time.perf_counter()
    T.train(model, training_batches(seq, seed), steps, learning_rate(shape))
    seconds = time.perf_counter() - start
    held = information(model, seq, seed)
    parameters = T.parameter_count(model)
    at = PromptWindows.of(text, prompts)
    return {"name": name, "target_parameters": int(target), "parameters": parameters, "layers": shape.layers,
            "d_model": shape.d_model, "heads": shape.heads, "context": shape.context, "vocabulary": shape.vocab,
            "train_tokens": steps * BATCH * CONTEXT, "epochs": steps * BATCH * CONTEXT / len(seq),
            "seconds": seconds, **held, "bits_per_parameter": held["information_bits"] / parameters,
            "recall": recall(model, seq, at), "slice": memorised(shape, seq, prompts, at, seed)}


def measure(markov, texts: list[str], generator_parameters: int, sizes: list[tuple[str, int]], tokens: int,
            protocol: str = "document", sample: int = 1000, seed: int = 0,
            log: Callable[[str], None] = lambda message: None) -> dict:
    """Train and measure a transformer for each of ``sizes`` (``(name, parameters)``) on the
    store's ``texts`` for ``tokens`` tokens each, beside the generator ``markov``'s recall
    of the same prompts (``generator_parameters``: its parameters as ``accum capacity``
    counts them). The result is what :func:`accum.storage.neural.write_neural_capacity`
    records."""
    version = torch_version()
    import torch

    from ..config import threads

    torch.set_num_threads(threads())
    batch = markov._batch(texts)
    prompts = Prompts.draw(batch, protocol, PREFIX, CONTINUATION, sample, seed)
    text = Text.of(markov, batch)
    generator = markov.recall(batch, prefix=PREFIX, continuation=CONTINUATION, sample=sample, seed=seed,
                              orders=[markov.order], protocol=protocol)[0]
    rows = []
    for name, target in sizes:
        log(f"training a transformer of about {target:,} parameters ({name}) on {tokens:,} tokens")
        rows.append(measure_size(name, target, text, prompts, tokens, seed))
    return {"torch": version,
            "protocol": {"prefix": PREFIX, "continuation": CONTINUATION, "sample": sample, "seed": seed,
                         "prompt_protocol": protocol},
            "information": INFORMATION, "reference_bits_per_parameter": BITS_PER_PARAMETER, "reference": REFERENCE,
            "pages": batch.n_docs, "text_tokens": len(text.dense), "sizes": rows,
            "generator": {"order": markov.order, "parameters": generator_parameters,
                          "recall": proportion(generator.extractable, generator.samples)}}
