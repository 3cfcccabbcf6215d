"""Calibration error and multi-label sets on the classification benchmark's splits.

Run by ``classify_peers.py`` after the systems, on the same splits. Calibration needs
pages the model was not trained on, so here each split's training pages (already
shuffled) are cut: every fifth page is held out for calibration and the model is trained
on the other 80 %, then everything is measured on the split's test pages:

- accum's default (ridge + complement) and complement: accuracy; expected calibration
  error (15 bins) of the top probability before (T = 1) and after the temperature, and
  of the confidence after the isotonic map; per-category thresholds fitted on the held-out
  pages plus as many two-topic pages made from them (:func:`accum.evaluate.fit_set_thresholds`);
  label-set scores on the single test pages and on two-topic test pages (two test pages of
  different categories joined, truth both; seeded);
- peers on the same 80 %: scikit-learn's MultinomialNB (CountVectorizer, alpha 0.01)
  for the ECE of its ``predict_proba``; TF-IDF 1-2 grams + LinearSVC one-vs-rest with
  each category's decision threshold at 0 (its natural label set; the top category when
  none is positive) for the label sets.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

HOLD_OUT_EVERY = 5
MAX_PAIRS = 2000
SEED = 0


def _one_hot_sets(y: np.ndarray) -> list[set]:
    return [{int(c)} for c in y]


def _accum_rows(fit_texts, fit_labels, held_texts, held_labels, test_texts, test_labels, n_pairs) -> list[dict]:
    from accum.calibration import apply_confidence_map, confidence_reliability, reliability, softmax
    from accum.classify import make_model
    from accum.evaluate import calibrate, label_set_report
    from benchmarks.classify_peers import count_pages

    acc = count_pages(fit_texts, fit_labels)
    rows = []
    for model in ("ridge-complement", "complement"):
        clf = make_model(acc, model)
        index = {c: i for i, c in enumerate(clf.categories)}
        y_held = np.array([index[c] for c in held_labels])
        y_test = np.array([index[c] for c in test_labels])
        calibrate(clf, clf.decision_function(held_texts), y_held, held_texts, len(held_texts), SEED)
        scores = clf.decision_function(test_texts)
        probs = softmax(scores, clf.temperature)
        correct = probs.argmax(axis=1) == y_test
        confidence = apply_confidence_map(probs.max(axis=1), clf.confidence_map)
        rows.append({
            "system": f"accum {model}",
            "accuracy": float(correct.mean()),
            "ece_raw": reliability(softmax(scores), y_test)["ece"],
            "ece_temperature": reliability(probs, y_test)["ece"],
            "ece_confidence": confidence_reliability(confidence, correct)["ece"],
            # the same two-topic pages as the peers': drawn by seed, whatever the category order
            **label_set_report(clf, probs, y_test, test_texts, n_pairs, SEED),
        })
    return rows


def _peer_rows(fit_texts, fit_labels, test_texts, test_labels, pairs, categories) -> list[dict]:
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.svm import LinearSVC

    from accum.calibration import label_set_scores, reliability

    index = {c: i for i, c in enumerate(categories)}
    y_test = np.array([index[c] for c in test_labels])
    names = list(range(len(categories)))

    vec = CountVectorizer()
    nb = MultinomialNB(alpha=0.01).fit(vec.fit_transform(fit_texts), fit_labels)
    order = [list(nb.classes_).index(c) for c in categories]
    probs = nb.predict_proba(vec.transform(test_texts))[:, order]
    mnb = {"system": "sklearn MultinomialNB", "accuracy": float((probs.argmax(axis=1) == y_test).mean()),
           "ece_raw": reliability(probs, y_test)["ece"]}

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    svm = LinearSVC(C=1).fit(vec.fit_transform(fit_texts), fit_labels)
    order = [list(svm.classes_).index(c) for c in categories]

    def sets(texts):
        decision = svm.decision_function(vec.transform(texts))[:, order]
        return [set(np.flatnonzero(d >= 0).tolist()) or {int(d.argmax())} for d in decision]

    svc = {"system": "sklearn LinearSVC one-vs-rest, threshold 0",
           "accuracy": float(np.mean(svm.predict(vec.transform(test_texts)) == np.array(test_labels))),
           "single": label_set_scores(_one_hot_sets(y_test), sets(test_texts), names),
           "two_topic": label_set_scores(pairs[1], sets(pairs[0]), names)}
    return [mnb, svc]


def run_split(split_file: Path) -> dict:
    """Every row of the section on one pickled split (run in its own process)."""
    from accum.evaluate import two_topic_pages

    with open(split_file, "rb") as f:
        split = pickle.load(f)
    held = [i for i in range(len(split.train_texts)) if i % HOLD_OUT_EVERY == 0]
    fit = [i for i in range(len(split.train_texts)) if i % HOLD_OUT_EVERY != 0]

    def pick(indices):
        return [split.train_texts[i] for i in indices], [split.train_labels[i] for i in indices]

    fit_texts, fit_labels = pick(fit)
    held_texts, held_labels = pick(held)
    categories = sorted(set(fit_labels))
    keep = [i for i, c in enumerate(split.test_labels) if c in categories]
    test_texts = [split.test_texts[i] for i in keep]
    test_labels = [split.test_labels[i] for i in keep]
    y_test = np.array([categories.index(c) for c in test_labels])
    pairs = two_topic_pages(test_texts, y_test, min(MAX_PAIRS, len(test_texts)), SEED)
    accum_rows = _accum_rows(fit_texts, fit_labels, held_texts, held_labels, test_texts, test_labels,
                             len(pairs[0]))
    return {"fold": split.name, "n_fit": len(fit), "n_held": len(held), "n_test": len(test_texts),
            "n_pairs": len(pairs[0]),
            "rows": accum_rows + _peer_rows(fit_texts, fit_labels, test_texts, test_labels, pairs, categories)}


def summarise(folds: list[dict]) -> list[dict]:
    """Each system's numbers, means over the folds (label-set scores flattened)."""
    by_system: dict[str, list[dict]] = {}
    for fold in folds:
        for row in fold["rows"]:
            flat = {k: v for k, v in row.items() if not isinstance(v, dict)}
            for part in ("single", "two_topic"):
                flat.update({f"{part}.{k}": v for k, v in row.get(part, {}).items()})
            by_system.setdefault(row["system"], []).append(flat)
    out = []
    for system, rows in by_system.items():
        keys = [k for k in rows[0] if k != "system"]
        out.append({"system": system, **{k: float(np.mean([r[k] for r in rows])) for k in keys}})
    return out


def section(folds: list[dict]) -> str:
    """The markdown section of one corpus."""
    from benchmarks.common import markdown_table

    def f(row, key, digits=3):
        return f"{row[key]:.{digits}f}" if key in row else "–"

    rows = summarise(folds)
    calibration = markdown_table(
        ["system", "accuracy", "ECE top probability, T = 1", "ECE after temperature", "ECE of the confidence"],
        [[r["system"], f(r, "accuracy"), f(r, "ece_raw"), f(r, "ece_temperature"), f(r, "ece_confidence")]
         for r in rows])
    sets = markdown_table(
        ["system", "single pages: example F1", "labels per page", "two-topic pages: example F1", "precision",
         "recall", "labels per page", "exact sets"],
        [[r["system"], f(r, "single.example_f1"), f(r, "single.labels_per_page", 2), f(r, "two_topic.example_f1"),
          f(r, "two_topic.example_precision"), f(r, "two_topic.example_recall"),
          f(r, "two_topic.labels_per_page", 2), f(r, "two_topic.subset_accuracy")]
         for r in rows if "single.example_f1" in r])
    sizes = ", ".join(f"{fold['fold']}: {fold['n_fit']:,} / {fold['n_held']:,} / {fold['n_test']:,} / "
                      f"{fold['n_pairs']:,}" for fold in folds)
    return "\n".join([
        "### Calibration and multi-label sets",
        "",
        f"Trained on 80 % of the training pages, calibrated on the other 20 %, measured on the test pages "
        f"(train / calibration / test pages / two-topic pages per fold: {sizes}); means over folds. See "
        "`benchmarks/calibration_sets.py` for the protocol.",
        "",
        calibration,
        "",
        sets,
        "",
    ])
