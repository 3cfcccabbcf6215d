"""One check suite for every counting estimator, as River runs one suite for every model.

Each estimator comes with a small adapter (how to build it, feed it labelled texts, read
its state as a canonical value and ask it about unseen input); every check below runs on
each of them: learning one page at a time equals a batch, merging partial models equals
learning everything at once (in either order), pickling and the arrays round trip keep
the state and the answers, unseen input gets an answer (never an error), an empty model
says so clearly, and seeded outputs repeat.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest

from accum.accumulator import Accumulator, Settings
from accum.markov import MarkovAccumulator

TEXTS = [
    "In the beginning God created the heaven and the earth.",
    "And the earth was without form, and void.",
    "The goalie stopped the puck; the crowd cheered!",
    "Graphics cards render the scene in real time.",
    "And God said, Let there be light: and there was light.",
    "The puck slid past the goalie into the net.",
    "",
]
LABELS = ["bible", "bible", "hockey", "graphics", "bible", "hockey", "graphics"]
UNSEEN = ["zebra quagga okapi", "Graphics zebra the", ""]


@dataclass
class Estimator:
    name: str
    make: Callable[[], object]
    canonical: Callable[[object], object]
    answer: Callable[[object, str], object]  # a deterministic answer about a (maybe unseen) text
    seeded: Callable[[object, int], object] | None  # an output drawn with a seed (None: nothing is random)


def _accumulator_answer(acc: Accumulator, text: str):
    words = text.split()
    return [acc.count(w) for w in words]


def _markov_answer(m: MarkovAccumulator, text: str):
    return [m.count(w) for w in text.split()], m.log_probs([text]).tolist(), m.distribution(text or None)


def _markov_seeded(m: MarkovAccumulator, seed: int):
    return (m.generate(60, seed=seed), m.generate(30, seed=seed, method="dirichlet", temperature=0.8, top_k=5),
            m.make_sentence(seed=seed), m.generate_ids(20, prompt="the", seed=seed).tolist(),
            [r.to_dict() for r in m.recall(TEXTS, prefix=2, continuation=3, sample=3, seed=seed, protocol="stream")])


ESTIMATORS = [
    Estimator("accumulator", lambda: Accumulator(Settings(max_order=2)), lambda a: a.canonical(),
              _accumulator_answer, None),
    Estimator("markov", lambda: MarkovAccumulator(order=3), lambda m: m.canonical(), _markov_answer,
              _markov_seeded),
]


@pytest.fixture(params=ESTIMATORS, ids=lambda e: e.name)
def estimator(request) -> Estimator:
    return request.param


def fitted(estimator: Estimator, texts=TEXTS, labels=LABELS):
    model = estimator.make()
    model.partial_fit(list(texts), list(labels))
    return model


def same_state(estimator: Estimator, a, b) -> bool:
    return (estimator.canonical(a) == estimator.canonical(b) and list(a.categories) == list(b.categories)
            and np.array_equal(a.doc_counts, b.doc_counts) and np.array_equal(a.token_counts, b.token_counts))


def test_learning_one_page_at_a_time_equals_a_batch(estimator):
    one = estimator.make()
    for text, label in zip(TEXTS, LABELS):
        one.learn_one(text, label)
    assert same_state(estimator, one, fitted(estimator))


def test_merge_equals_learning_everything_at_once(estimator):
    whole = fitted(estimator)
    for cut in (1, 3, 6):
        first = fitted(estimator, TEXTS[:cut], LABELS[:cut])
        second = fitted(estimator, TEXTS[cut:], LABELS[cut:])
        assert estimator.canonical(first.merge(second)) == estimator.canonical(whole)
        assert np.array_equal(first.doc_counts, whole.doc_counts) and first.categories == whole.categories
    # the other way round: the same counts, categories in the order the merge met them
    swapped = fitted(estimator, TEXTS[3:], LABELS[3:]).merge(fitted(estimator, TEXTS[:3], LABELS[:3]))
    assert estimator.canonical(swapped) == estimator.canonical(whole)


def test_merging_an_empty_model_changes_nothing(estimator):
    model = fitted(estimator)
    before = estimator.canonical(model)
    assert estimator.canonical(model.merge(estimator.make())) == before


def test_pickling_and_arrays_keep_the_state_and_the_answers(estimator):
    model = fitted(estimator)
    for back in (pickle.loads(pickle.dumps(model)), type(model).from_arrays(model.to_arrays())):
        assert same_state(estimator, back, model)
        for text in UNSEEN + TEXTS[:2]:
            assert estimator.answer(back, text) == estimator.answer(model, text)
        if estimator.seeded is not None:
            assert estimator.seeded(back, 3) == estimator.seeded(model, 3)


def test_unseen_input_gets_an_answer(estimator):
    model = fitted(estimator)
    for text in UNSEEN:
        answer = estimator.answer(model, text)  # no error
        flat = np.array([x for part in np.atleast_1d(np.asarray(answer, dtype=object)).ravel()
                         for x in (part.values() if isinstance(part, dict) else
                                   part if isinstance(part, list) else [part])
                         if isinstance(x, (int, float, np.integer, np.floating))], float)
        assert np.all(np.isfinite(flat))


def test_learning_is_deterministic(estimator):
    a, b = fitted(estimator), fitted(estimator)
    assert same_state(estimator, a, b)
    for name, value in a.to_arrays().items():
        other = b.to_arrays()[name]
        assert (np.array_equal(value, other) if isinstance(value, np.ndarray) else value == other), name


def test_seeded_outputs_repeat(estimator):
    if estimator.seeded is None:
        pytest.skip(f"{estimator.name} draws nothing at random")
    model = fitted(estimator)
    assert estimator.seeded(model, 7) == estimator.seeded(fitted(estimator), 7)
    assert len({repr(estimator.seeded(model, seed)) for seed in range(4)}) > 1


def test_an_empty_model_is_refused_clearly_or_answers_nothing(estimator):
    model = estimator.make()
    assert model.n_documents == 0 and model.n_categories == 0
    try:
        estimator.answer(model, "the earth")
    except ValueError as error:
        assert "no documents" in str(error) or "partial_fit" in str(error)


def test_bad_input_is_refused_with_a_type_error(estimator):
    model = estimator.make()
    with pytest.raises((TypeError, ValueError)):
        model.partial_fit("one text, not a list", ["bible"])
    with pytest.raises(ValueError):
        model.partial_fit(TEXTS[:2], LABELS[:1])
    assert model.n_documents == 0
