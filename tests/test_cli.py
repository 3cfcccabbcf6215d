"""The accum command as a user runs it: real processes, real corpora, real stores."""

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpora import corpus_path

ACCUM = [sys.executable, "-m", "accum.cli"]


def accum(*args, input=None, check=True, env=None):
    """Run ``accum ARGS``; return the CompletedProcess (text mode)."""
    proc = subprocess.run(
        [*ACCUM, *map(str, args)], input=input, capture_output=True, text=True,
        env={**os.environ, **(env or {})}, timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"accum {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stderr}")
    return proc


def accum_json(*args, **kwargs):
    proc = accum(*args, "--json", **kwargs)
    return json.loads(proc.stdout)  # exactly one JSON document, nothing else on stdout


@pytest.fixture(scope="module")
def news_store(tmp_path_factory):
    """A store holding all of 20 Newsgroups train, and the ingest summary."""
    store = tmp_path_factory.mktemp("news") / "store"
    train = corpus_path("20news-bydate/20news-bydate-train")
    summary = accum_json("ingest", train, "--label", "dir", "--store", store)
    return store, summary


def test_ingest_20newsgroups_summary(news_store):
    _, summary = news_store
    assert summary["pages_added"] == 11314
    assert summary["duplicates"] == 0 and summary["skipped"] == {}
    assert summary["categories"] == 20 and summary["documents"] == 11314
    assert summary["tokens"] > 3_000_000
    assert summary["mb_per_s"] > 0 and summary["tokens_per_s"] > 0


def test_evaluate_20newsgroups_reaches_the_bar(news_store):
    store, _ = news_store
    test = corpus_path("20news-bydate/20news-bydate-test")
    report = accum_json("evaluate", test, "--label", "dir", "--store", store)
    assert report["n"] == 7532
    assert report["accuracy"] >= 0.80
    assert 0.75 <= report["macro_f1"] <= 1
    assert set(report["per_category"]) == set(report["confusion"]["labels"])
    matrix = report["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == report["n"]
    assert sum(matrix[i][i] for i in range(20)) == round(report["accuracy"] * report["n"])


def test_reingest_adds_nothing(news_store):
    store, _ = news_store
    before = accum_json("info", "--store", store)
    again = accum_json("ingest", corpus_path("20news-bydate/20news-bydate-train"), "--label", "dir", "--store", store)
    assert again["pages_added"] == 0 and again["duplicates"] == 11314
    after = accum_json("info", "--store", store)
    for key in ("documents", "tokens", "distinct_features", "parameters"):
        assert after[key] == before[key]
    assert [r["status"] for r in after["runs"]] == ["finished", "finished"]


def test_classify_top_k_and_exact_explanation(news_store, tmp_path):
    store, _ = news_store
    text = "The goalie made a great save in overtime and the Leafs won the playoff game."
    out = accum_json("classify", text, "--top", "4", "--explain", "--store", store)
    assert out["label"] == "rec.sport.hockey"
    assert len(out["top"]) == 4
    assert out["top"][0]["probability"] >= out["top"][1]["probability"]
    exp = out["explanation"]
    total = exp["prior"] + sum(f["contribution"] for f in exp["features"]) + exp["rest"]
    assert total == pytest.approx(exp["log_odds"], abs=1e-9)
    words = {f["feature"] for f in exp["features"]}
    assert words & {"goalie", "leafs", "playoff", "overtime"}
    # the same text from standard input and from a file gives the same answer
    assert accum_json("classify", "-", "--top", "4", "--store", store, input=text)["top"] == out["top"]
    path = tmp_path / "page.txt"
    path.write_text(text)
    assert accum_json("classify", "--file", path, "--top", "4", "--store", store)["top"] == out["top"]
    human = accum("classify", "--explain", text, "--store", store).stdout
    assert "rec.sport.hockey" in human and "log-odds" in human


def test_categories_and_info(news_store):
    store, _ = news_store
    cats = accum_json("categories", "--store", store)
    assert len(cats) == 20 and sum(c["documents"] for c in cats) == 11314
    info = accum_json("info", "--store", store)
    for key in ("documents", "tokens", "distinct_features", "parameters", "bytes"):
        assert info[key] > 0
    assert info["parameters"] >= info["distinct_features"]
    assert "features" in accum("info", "--store", store).stdout


def test_webkb_ingests_from_the_raw_files(tmp_path):
    webkb = corpus_path("webkb")
    summary = accum_json("ingest", webkb, "--label", "dir", "--store", tmp_path / "s")
    seen = summary["pages_added"] + summary["duplicates"] + sum(summary["skipped"].values())
    assert seen == 8281
    assert summary["pages_added"] > 8000
    cats = {c["name"]: c["documents"] for c in accum_json("categories", "--store", tmp_path / "s")}
    assert set(cats) == {"student", "faculty", "course", "project", "department", "staff", "other"}


def test_a_store_without_the_gram_defaults_to_complement(tmp_path):
    """--gram-bits 0: no Gram is kept, so the default model is complement and asking for
    ridge-complement is a data error; the setting is fixed at the store's first ingest."""
    cornell = corpus_path("webkb/course/cornell")
    store = tmp_path / "s"
    accum_json("ingest", cornell, "--default-label", "course", "--gram-bits", "0", "--store", store)
    assert accum_json("info", "--store", store)["settings"]["gram_bits"] == 0
    out = accum_json("classify", "homework due friday", "--store", store)
    assert out["model"] == "complement"
    proc = accum("classify", "homework", "--store", store, "--model", "ridge-complement", check=False)
    assert proc.returncode == 1 and "--gram-bits 0" in proc.stderr
    again = accum("ingest", cornell, "--default-label", "course", "--gram-bits", "12", "--store", store, check=False)
    assert again.returncode == 2 and "gram-bits 0" in again.stderr


def test_engine_errors_speak_settings_and_the_cli_names_flags(tmp_path):
    """The engine's errors name its own settings (gram_bits, a figure's file name); the
    command line names its flags (--plot is checked before any work: a usage error)."""
    from accum.accumulator import Accumulator
    from accum.classify import make_model
    from accum.plots import figure_path
    from accum.settings import Settings

    acc = Accumulator(Settings(gram_bits=0))
    acc.partial_fit(["the goalie", "the rocket"], ["hockey", "space"])
    with pytest.raises(ValueError, match="gram_bits 0") as caught:
        make_model(acc, "ridge-complement")
    assert "--" not in str(caught.value)
    with pytest.raises(ValueError, match="must end in .png or .svg") as caught:
        figure_path("growth.pdf")
    assert "--" not in str(caught.value)
    proc = accum("saturation", "--plot", "growth.pdf", "--store", tmp_path / "nowhere", check=False)
    assert proc.returncode == 2 and "--plot" in proc.stderr and "growth.pdf" in proc.stderr


def test_real_warc_samples_ingest(tmp_path):
    warcs = sorted(p for p in corpus_path("warc-samples").rglob("*") if p.is_file())
    summary = accum_json("ingest", *warcs, "--default-label", "web", "--store", tmp_path / "s")
    # 20 HTTP responses in the WARC files plus 1 WET conversion of a page also in a WARC
    assert summary["pages_added"] + summary["duplicates"] == 20 + 2
    assert summary["pages_added"] >= 19
    assert accum_json("info", "--store", tmp_path / "s")["documents"] == summary["pages_added"]


def webkb_warc(path, n_per_class=30):
    """Write WebKB pages as a gzipped WARC of HTTP responses; return {url: class}."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    root = corpus_path("webkb")
    labels = {}
    with open(path, "wb") as out:
        writer = WARCWriter(out, gzip=True)
        for cls in ("course", "faculty", "student"):
            files = sorted((root / cls / "cornell").iterdir())[:n_per_class]
            for f in files:
                raw = f.read_bytes()
                head, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
                url = f.name.replace("^", "/")
                headers = StatusAndHeaders("200 OK", [("Content-Type", "text/html")], protocol="HTTP/1.0")
                writer.write_record(writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=headers))
                labels[url] = cls
    return labels


def test_warc_from_webkb_with_rules_file(tmp_path):
    warc = tmp_path / "webkb.warc.gz"
    labels = webkb_warc(warc)
    rules = tmp_path / "rules.txt"
    rules.write_text("# url pattern -> label\n" + "\n".join(f"{u} {c}" for u, c in labels.items()) + "\n")
    summary = accum_json("ingest", warc, "--label", f"rules:{rules}", "--store", tmp_path / "s")
    assert summary["pages_added"] + summary["duplicates"] + sum(summary["skipped"].values()) == len(labels)
    cats = {c["name"]: c["documents"] for c in accum_json("categories", "--store", tmp_path / "s")}
    assert set(cats) == {"course", "faculty", "student"}
    # glob rules: everything under a course path is a course
    rules.write_text("*course* course\n*cs.cornell.edu/Info/People* person\n")
    report = accum_json("evaluate", warc, "--label", f"rules:{rules}", "--store", tmp_path / "s")
    assert report["n"] > 0


def test_truncated_and_corrupt_inputs_are_reported_and_the_store_stays_readable(tmp_path):
    warc = tmp_path / "webkb.warc.gz"
    labels = webkb_warc(warc, 10)
    raw = warc.read_bytes()
    broken = tmp_path / "broken.warc.gz"
    broken.write_bytes(raw[: len(raw) // 2])
    garbage = tmp_path / "garbage.warc"
    garbage.write_bytes(b"WARC/1.0\r\nthis is not a warc header\r\n\r\n" + os.urandom(500))
    rules = tmp_path / "rules.txt"
    rules.write_text("*course* course\n* other\n")
    summary = accum_json("ingest", broken, garbage, "--label", f"rules:{rules}", "--store", tmp_path / "s")
    assert summary["skipped"].get("truncated", 0) + summary["skipped"].get("malformed", 0) >= 2
    assert 0 < summary["pages_added"] < len(labels)
    info = accum_json("info", "--store", tmp_path / "s")
    assert info["documents"] == summary["pages_added"]
    # the whole file afterwards adds exactly the pages the truncated copy lacked
    full = accum_json("ingest", warc, "--label", f"rules:{rules}", "--store", tmp_path / "s")
    assert full["duplicates"] == summary["pages_added"]
    assert accum_json("info", "--store", tmp_path / "s")["documents"] == summary["pages_added"] + full["pages_added"]


def test_usage_errors_exit_2_and_data_errors_exit_1(tmp_path):
    assert accum("classify", check=False).returncode == 2
    assert accum("ingest", tmp_path / "does-not-exist", check=False).returncode == 2
    assert accum("ingest", tmp_path, "--format", "csv", check=False).returncode == 2
    missing = accum("classify", "text", "--store", tmp_path / "nope", check=False)
    assert missing.returncode == 1 and "no accum store" in missing.stderr
    bad_rules = accum("ingest", tmp_path, "--label", f"rules:{tmp_path / 'no-rules.txt'}",
                      "--store", tmp_path / "s", check=False)
    assert bad_rules.returncode == 1 and "rules" in bad_rules.stderr
    assert "Traceback" not in missing.stderr + bad_rules.stderr


def test_help_is_instant_and_lists_commands():
    out = accum("--help").stdout
    for command in ("ingest", "classify", "evaluate", "categories", "info", "demo"):
        assert command in out
    code = "import sys, accum.cli.main; print('numba' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_demo_finds_the_shared_corpora_without_a_setting(tmp_path):
    """As a user runs it: no ACCUM_CORPORA, the corpora in ../shared/data beside the working directory."""
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(corpus_path())
    (tmp_path / "work").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "ACCUM_CORPORA"}
    proc = subprocess.run([*ACCUM, "demo", "--quiet", "--store", "demo"], cwd=tmp_path / "work", env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert f"from {tmp_path / 'shared' / 'data' / '20news-bydate'}" in proc.stdout
    assert "accuracy 0.8" in proc.stdout
    assert "why rec.sport.hockey" in proc.stdout


def test_demo_downloads_20_newsgroups_without_local_corpora(tmp_path):
    """The download path, through scikit-learn's fetcher, from a mirror on 127.0.0.1 (this
    machine has no internet): a tarball laid out like the published one, with a few posts
    per group, so only the URL and its checksum differ from the real download."""
    import hashlib
    import tarfile

    root = corpus_path("20news-bydate")
    archive = tmp_path / "mirror" / "20news-bydate.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for split, per_group in (("20news-bydate-train", 12), ("20news-bydate-test", 4)):
            for group in sorted(p for p in (root / split).iterdir() if p.is_dir()):
                for post in sorted(group.iterdir())[:per_group]:
                    tar.add(post, arcname=f"{split}/{group.name}/{post.name}")
    checksum = hashlib.sha256(archive.read_bytes()).hexdigest()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
                              cwd=archive.parent, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(server.stdout.readline().split(" port ")[1].split()[0])
        code = (
            "import sklearn.datasets._twenty_newsgroups as t, accum.cli.demo as d\n"
            f"t.ARCHIVE = t.RemoteFileMetadata('20news-bydate.tar.gz', "
            f"'http://127.0.0.1:{port}/20news-bydate.tar.gz', '{checksum}')\n"
            "d._shared_corpora = lambda: None  # as on a machine without ../shared/data\n"
            "from accum.cli.main import cli\n"
            "cli(['demo', '--quiet', '--store', 'demo'])\n"
        )
        env = {k: v for k, v in os.environ.items() if k != "ACCUM_CORPORA"} | {
            "SCIKIT_LEARN_DATA": str(tmp_path / "sklearn-data")}
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)
    finally:
        server.terminate()
        server.wait()
    assert proc.returncode == 0, proc.stderr
    assert "20 Newsgroups (bydate split) from scikit-learn fetch_20newsgroups" in proc.stdout
    assert "ingested 240 new pages" in proc.stdout
    assert "evaluation on the test split" in proc.stdout


def test_saturation_figure_on_20newsgroups(news_store, tmp_path):
    store, _ = news_store
    out = accum_json("saturation", "--order", "2", "--plot", tmp_path / "g.png", "--store", store)
    assert out["overall"]["pages"] == 11314 and len(out["categories"]) == 20
    assert (tmp_path / "g.png").stat().st_size > 100_000 and (tmp_path / "g.csv").exists()
    for s in out["categories"]:
        assert s["heaps"]["r2"] > 0.9 and 0.3 < s["heaps"]["beta"] < 1.0
        assert s["distinct"] > s["at_least_2"] > s["at_least_5"] > 0
