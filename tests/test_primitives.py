"""The kernel primitives every kernel file shares: one UTF-8 rule and one word rule, so that
the classifier's and the generator's tokenisers split the same bytes into the same words."""

import numpy as np
from hypothesis import given, settings, strategies as st

from accum import _kernels
from accum import _markov_kernels as K
from accum._primitives import INVALID, decode_utf8, is_word_char, ngram_id
from accum.markov import tokenize as markov_tokenize
from accum.tokens import tokenize as classifier_tokenize

import naive


def python_decode(raw: bytes) -> tuple[int, int]:
    """The oracle: the code point and length of the one character Python's decoder (with
    ``surrogatepass``, as the engine encodes) reads at the start of ``raw``, else (INVALID, 1)."""
    for n in range(1, min(4, len(raw)) + 1):
        try:
            text = raw[:n].decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            continue
        if len(text) == 1:
            return ord(text), n
    return INVALID, 1


def kernel_decode(raw: bytes) -> tuple[int, int]:
    cp, n = decode_utf8(np.frombuffer(raw, np.uint8), 0, len(raw))
    return int(cp), int(n)


def test_the_decoder_reads_what_python_reads_for_every_one_and_two_byte_sequence():
    for a in range(256):
        assert kernel_decode(bytes([a])) == python_decode(bytes([a])), hex(a)
        for b in range(256):
            raw = bytes([a, b])
            assert kernel_decode(raw) == python_decode(raw), raw


def test_the_decoder_on_the_edges_of_utf8():
    cases = {
        b"\xf5\x80\x80\x80": (INVALID, 1),  # F5-FF never start a character
        b"\xf7\xbf\xbf\xbf": (INVALID, 1),
        b"\xff": (INVALID, 1),
        b"\xc0\xaf": (INVALID, 1),  # overlong '/'
        b"\xe0\x80\xaf": (INVALID, 1),
        b"\xf0\x80\x80\xaf": (INVALID, 1),
        b"\xf4\x90\x80\x80": (INVALID, 1),  # above U+10FFFF
        b"\xf4\x8f\xbf\xbf": (0x10FFFF, 4),
        b"\xed\xa0\x80": (0xD800, 3),  # a lone surrogate, as surrogatepass writes it
        b"\xe2\x82": (INVALID, 1),  # truncated
        b"\xe2\x82\xac": (0x20AC, 3),
        b"\xf0\x9f\x99\x82": (0x1F642, 4),
    }
    for raw, want in cases.items():
        assert kernel_decode(raw) == python_decode(raw) == want, raw


@settings(max_examples=3000, deadline=None)
@given(st.binary(min_size=1, max_size=4).map(lambda b: bytes([0xE0 + b[0] % 0x15]) + b[1:]))
def test_the_decoder_reads_what_python_reads_for_longer_sequences(raw):
    assert kernel_decode(raw) == python_decode(raw)


def test_the_word_rule_keeps_letters_and_digits_of_any_script():
    for ch in "aZ09éßжΩ中ー":
        assert is_word_char(ord(ch)), ch
    for ch in " .,;'\"-—€×÷\u00a0\u2028\u3001🙂\ufeff":
        assert not is_word_char(ord(ch)), ch
    assert not is_word_char(INVALID)


PIECES = ["the", "Cat", "42", "é", "жук", "中文", " ", "\t", ".", ",", "!", "—", "€", "🙂", "(", "\"",
          # malformed bytes: lone continuation bytes, bad and overlong leads, truncated sequences,
          # code points above U+10FFFF, and an encoded lone surrogate (valid: surrogatepass)
          b"\x80", b"\xbf", b"\xc0\xaf", b"\xc1", b"\xf5\x80\x80\x80", b"\xf7", b"\xf8", b"\xff", b"\xe2\x82",
          b"\xe0\x80\xaf", b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xed\xa0\x80"]


def _bytes(piece) -> bytes:
    return piece if isinstance(piece, bytes) else piece.encode("utf-8")


def word_spans_of_both(raw: bytes):
    """(start, length, id) of each word, by the classifier's tokeniser and by the generator's
    (its words, without its punctuation marks)."""
    buf = np.frombuffer(raw, np.uint8)
    bounds = np.array([0, len(raw)], np.int64)
    ids, starts, lengths, _ = _kernels.tokenize(buf, bounds)
    classifier = list(zip(starts.tolist(), lengths.tolist(), ids.tolist()))
    ids, starts, lengths, info, _ = K.tokenize(buf, bounds)
    words = np.isin(info & 7, (K.K_LOWER, K.K_WORD))
    generator = list(zip(starts[words].tolist(), lengths[words].tolist(), ids[words].tolist()))
    return classifier, generator


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_both_tokenisers_split_malformed_bytes_into_the_same_words(pieces):
    raw = b"".join(map(_bytes, pieces))
    classifier, generator = word_spans_of_both(raw)
    assert classifier == generator
    for start, length, _ in classifier:  # no word holds a byte that does not decode
        word = raw[start : start + length]
        assert word.decode("utf-8", "surrogatepass")


def test_invalid_bytes_separate_words_in_both_tokenisers():
    raw = b"abc\xf5\x80\x80\x80def x\xe0\x80\xafy caf\xc3\xa9\xffno \xed\xa0\x80z"
    classifier, generator = word_spans_of_both(raw)
    words = [raw[a : a + n] for a, n, _ in classifier]
    assert words == [b"abc", b"def", b"x", b"y", b"caf\xc3\xa9", b"no", b"\xed\xa0\x80z"]
    assert classifier == generator


def test_text_tokenises_to_the_same_words_through_both_public_tokenisers():
    texts = ["Café au lait, naïve 42 — don\u2019t", "lone \udc80surrogate and \U0001f642 emoji"]
    classifier = classifier_tokenize(texts, lowercase=False)
    generator = markov_tokenize(texts)
    words = np.isin(generator.info & 7, (K.K_LOWER, K.K_WORD))
    for d in range(len(texts)):
        mine = [classifier.token_text(i) for i in range(classifier.bounds[d], classifier.bounds[d + 1])]
        theirs = [generator.token_text(i) for i in range(generator.bounds[d], generator.bounds[d + 1])
                  if words[i]]
        # the generator keeps an apostrophe between letters inside a word; the classifier splits there
        assert " ".join(mine) == " ".join(theirs).replace("\u2019", " ")


def test_ngram_ids_differ_only_in_the_ids_each_product_reserves():
    a, b = np.uint64(naive.token_id("the")), np.uint64(naive.token_id("earth"))
    assert _kernels.ngram_id(a, b, 2) == ngram_id(a, b, 2, np.uint64(1))
    assert K.ngram_id(a, b, 2) == ngram_id(a, b, 2, K.MIN_ID)
    assert _kernels.ngram_id(a, b, 2) == K.ngram_id(a, b, 2)  # no hash falls below 16 here
