"""The models trained over page vectors: the solver against scikit-learn's LIBLINEAR on
the same features, scoring from text against scoring from vectors, exact explanations."""

import numpy as np
import pytest
from sklearn.svm import LinearSVC

from accum.accumulator import Accumulator, Settings
from accum.linear import DenseLinearModel, PageMatrix, PathSolver, TrainingPages, score_pages, train_path


@pytest.fixture(scope="module")
def sample(newsgroups_sample):
    texts, labels = newsgroups_sample
    acc = Accumulator(Settings(gram_bits=0), keep_vectors=True)
    acc.partial_fit(texts, labels)
    return acc, PageMatrix.from_vectors(acc.take_vectors()), texts


def explicit_features(matrix: PageMatrix, family: str, normalize: bool, rows: np.ndarray, problem: int):
    """The pages' feature matrix (dense) exactly as the model defines it, for one problem."""
    from accum.linear import FEATURES

    presence, _ = FEATURES[family]
    scale = TrainingPages(matrix, rows).scale(family)
    s = scale[:, 0 if scale.shape[1] == 1 else problem].astype(np.float64)
    x = np.zeros((len(rows), matrix.n_cols))
    for k, i in enumerate(rows):
        a, b = matrix.indptr[i], matrix.indptr[i + 1]
        v = np.ones(b - a) if presence else matrix.log_tf[a:b].astype(np.float64)
        x[k, matrix.indices[a:b]] = v * s[matrix.indices[a:b]]
        if normalize:
            x[k] /= np.linalg.norm(x[k])
    return x


def primal(w, b, x, y, C):
    """LIBLINEAR's objective with a regularised bias: 0.5 (|w|² + b²) + C sum(max(0, 1 - y(wx + b))²)."""
    margin = np.maximum(0.0, 1.0 - y * (x @ w + b))
    return 0.5 * (w @ w + b * b) + C * np.sum(margin**2)


@pytest.mark.parametrize("family, normalize", [("svm", True), ("nbsvm", True), ("nbsvm", False)])
def test_the_solver_reaches_liblinears_optimum(sample, family, normalize, monkeypatch):
    _, matrix, _ = sample
    monkeypatch.setattr("accum.linear.TOLERANCE", 1e-4)
    rows = np.arange(matrix.n_pages)
    [trained] = train_path(TrainingPages(matrix, rows), family, normalize, [1.0])
    scale = trained.scale
    for problem in (0, 7):
        x = explicit_features(matrix, family, normalize, rows, problem)
        y = np.where(matrix.labels == problem, 1.0, -1.0)
        s = scale[:, 0 if scale.shape[1] == 1 else problem].astype(np.float64)
        w = np.divide(trained.ws[:, problem], s, out=np.zeros(matrix.n_cols), where=s != 0)
        ours = primal(w, trained.bias[problem], x, y, 1.0)
        svc = LinearSVC(C=1.0, loss="squared_hinge", dual=True, tol=1e-6, max_iter=100_000).fit(x, y)
        theirs = primal(svc.coef_[0], svc.intercept_[0], x, y, 1.0)
        assert abs(ours - theirs) <= 1e-3 * theirs


def test_private_columns_and_c_paths_change_nothing(sample):
    """Columns one page holds solved implicitly give the same solution as solved
    explicitly; the problems of several C values solved in lockstep are each the same,
    bit for bit, as solved alone."""
    _, matrix, _ = sample
    rows = np.arange(0, matrix.n_pages, 2)
    implicit = TrainingPages(matrix, rows)
    explicit = TrainingPages(matrix, rows)
    explicit.__dict__["private"] = np.zeros(matrix.n_cols, bool)
    assert implicit.private.sum() > matrix.n_cols / 3  # most columns: rare n-grams
    [one], [two] = (train_path(pages, "svm", True, [1.0]) for pages in (implicit, explicit))
    held = implicit.df > 0
    np.testing.assert_allclose(one.ws[held], two.ws[held], rtol=2e-3, atol=2e-5)
    np.testing.assert_allclose(one.bias, two.bias, rtol=2e-3, atol=2e-5)
    for family, normalize in (("svm", True), ("nbsvm", False)):
        together = train_path(implicit, family, normalize, [0.3, 1.0])
        for trained in together:
            [alone] = train_path(implicit, family, normalize, [trained.C])
            assert np.array_equal(alone.ws, trained.ws) and np.array_equal(alone.bias, trained.bias)


@pytest.mark.parametrize("family, normalize, beta", [("svm", True, 1.0), ("nbsvm", True, 0.25), ("nbsvm", False, 0.5)])
def test_a_model_scores_text_as_the_matrix_does_and_explains_exactly(sample, family, normalize, beta):
    acc, matrix, texts = sample
    rows = np.arange(matrix.n_pages)
    [trained] = train_path(TrainingPages(matrix, rows), family, normalize, [0.3])
    model = DenseLinearModel.from_trained(trained, matrix, acc.settings, beta)
    from_text = model.decision_function(texts)
    [from_matrix] = score_pages(matrix, rows, trained, [beta])
    np.testing.assert_allclose(from_text, from_matrix, rtol=1e-4, atol=1e-4)
    from accum.classify import model_from_arrays

    again = model_from_arrays(model.to_arrays())
    assert np.array_equal(again.decision_function(texts[:20]), from_text[:20])
    for text in texts[:5] + ["a page of words never seen zzxq", ""]:
        e = model.explain(text, n_terms=5)
        total = e.prior + sum(f["contribution"] for f in e.features) + e.rest
        assert total == pytest.approx(e.log_odds, abs=1e-6)


def test_two_classes_are_one_problem_scored_both_ways(newsgroups_sample):
    texts, labels = newsgroups_sample
    pick = [i for i, l in enumerate(labels) if l in ("sci.space", "rec.autos")]
    acc = Accumulator(Settings(gram_bits=0), keep_vectors=True)
    acc.partial_fit([texts[i] for i in pick], [labels[i] for i in pick])
    matrix = PageMatrix.from_vectors(acc.take_vectors())
    [trained] = train_path(TrainingPages(matrix, np.arange(matrix.n_pages)), "nbsvm", False, [0.1])
    assert trained.ws.shape[1] == 1
    model = DenseLinearModel.from_trained(trained, matrix, acc.settings, 0.25)
    scores = model.decision_function([texts[i] for i in pick])
    np.testing.assert_allclose(scores[:, 0], -scores[:, 1])
    assert np.mean(np.array(model.predict([texts[i] for i in pick])) == np.array([labels[i] for i in pick])) == 1.0


@pytest.mark.parametrize("two", [False, True])
def test_log_count_ratios_are_naive_bayes_as_the_paper_defines_them(sample, newsgroups_sample, two):
    """r = log((p / |p|_1) / (q / |q|_1)), p and q a class's and the other classes' document
    frequencies plus 1 over the columns the training pages hold (two classes: one ratio,
    class 1 against class 0), 0 elsewhere."""
    _, matrix, _ = sample
    if two:
        texts, labels = newsgroups_sample
        acc = Accumulator(Settings(gram_bits=0), keep_vectors=True)
        acc.partial_fit(*zip(*[(t, l) for t, l in zip(texts, labels) if l in ("sci.space", "rec.autos")]))
        matrix = PageMatrix.from_vectors(acc.take_vectors())
    rows = np.arange(0, matrix.n_pages, 2)
    pages = TrainingPages(matrix, rows)
    counts = np.zeros((matrix.n_cols, len(matrix.categories)))
    for i in rows:
        counts[matrix.indices[matrix.indptr[i] : matrix.indptr[i + 1]], matrix.labels[i]] += 1
    held = counts.sum(axis=1) > 0
    if two:
        p, q = counts[held][:, 1:2] + 1, counts[held][:, 0:1] + 1
    else:
        p, q = counts[held] + 1, counts[held].sum(axis=1, keepdims=True) - counts[held] + 1
    expected = np.log(p / p.sum(axis=0)) - np.log(q / q.sum(axis=0))
    r = pages.scale("nbsvm")
    np.testing.assert_allclose(r[held], expected, rtol=1e-5, atol=1e-5)
    assert not r[~held].any()


def test_a_search_path_narrowed_to_fewer_c_and_columns_scores_as_a_whole_one(sample):
    """A path that stops some C values goes on bit for bit as one solved without them;
    one that keeps only the weights of columns two pages hold scores held-out pages as
    one that keeps every column (NBSVM's interpolation included)."""
    _, matrix, _ = sample
    train, test = np.nonzero(np.arange(matrix.n_pages) % 3 != 0)[0], np.nonzero(np.arange(matrix.n_pages) % 3 == 0)[0]
    pages = TrainingPages(matrix, train)
    narrowed, alone = PathSolver(pages, "nbsvm", True, [0.3, 1.0, 3.0]), PathSolver(pages, "nbsvm", True, [1.0])
    narrowed.run(2), alone.run(2)
    narrowed.keep([1.0])
    narrowed.run(3), alone.run(3)
    [kept], [whole] = next(narrowed.trained()), next(alone.trained())
    assert np.array_equal(kept.ws, whole.ws) and np.array_equal(kept.bias, whole.bias)
    assert 0 < matrix.n_shared < matrix.n_cols
    [short], [full] = (_solved(PathSolver(pages, "nbsvm", True, [1.0], kept_columns=kept), 5)
                       for kept in (matrix.n_shared, None))
    assert short.ws.shape[0] == matrix.n_shared
    np.testing.assert_allclose(short._mean_abs, full._mean_abs, rtol=1e-6)
    for a, b in zip(score_pages(matrix, test, short, [0.25, 1.0]), score_pages(matrix, test, full, [0.25, 1.0])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _solved(solver: PathSolver, epochs: int) -> list:
    """The groups of ``solver`` after ``epochs`` passes, as lists of Trained per C."""
    solver.run(epochs)
    return next(solver.trained())


@pytest.mark.parametrize("family, normalize", [("svm", True), ("nbsvm", True), ("nbsvm", False)])
def test_a_path_solved_in_groups_of_classes_is_the_same_bit_for_bit(sample, family, normalize, tmp_path):
    """Under a memory cap the classes are solved a group at a time, each group's arrays
    on disk between runs (narrowed to fewer C values on the way), in files without a
    name in the scratch directory: every weight, intercept, held-out score and the model
    built group by group equal those of the path solved as one set."""
    acc, matrix, texts = sample
    train, test = np.nonzero(np.arange(matrix.n_pages) % 3 != 0)[0], np.nonzero(np.arange(matrix.n_pages) % 3 == 0)[0]
    pages = TrainingPages(matrix, train)
    whole = PathSolver(pages, family, normalize, [0.3, 1.0])
    grouped = PathSolver(pages, family, normalize, [0.3, 1.0], max_bytes=3 * whole._class_bytes(), scratch=tmp_path)
    assert len(grouped.groups) == -(-len(matrix.categories) // 3) and len(whole.groups) == 1
    for solver in (whole, grouped):
        solver.run(2)
        solver.keep([1.0])
        solver.run(3)
    assert len(grouped._spill) == len(grouped.groups) and list(tmp_path.iterdir()) == []  # nothing a kill could leave
    assert grouped.epochs == whole.epochs
    [[one]] = list(whole.trained())
    parts = [part for [part] in grouped.trained()]
    assert np.array_equal(np.hstack([p.ws for p in parts]), one.ws)
    assert np.array_equal(np.concatenate([p.bias for p in parts]), one.bias)
    assert np.array_equal(np.concatenate([p._mean_abs for p in parts]), one._mean_abs)
    betas = {1.0: [0.25, 1.0]}
    from accum.linear import path_scores

    for a, b in zip(path_scores(grouped, test, betas)[1.0], path_scores(whole, test, betas)[1.0]):
        assert np.array_equal(a, b)
    held = pages.df > 0
    models = [DenseLinearModel.from_trained(p, matrix, acc.settings, 0.5, held=held)
              for p in (one, (part for [part] in grouped.trained()))]
    for name in ("fids", "weights", "scale", "bias"):
        assert np.array_equal(getattr(models[0], name), getattr(models[1], name))
