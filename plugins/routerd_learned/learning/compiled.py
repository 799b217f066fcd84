"""The lexical view of one prompt, compiled: every token and character n-gram hashed, bucketed and counted in one
call, and one prompt's prediction from its buckets in another.

The same arithmetic as `routerd_learned.learning.token_view` (the token view, defined one token string at a time by
`reference_hashes`) and `routerd_learned.learning.text_features.char_ngram_hashes`, written as loops over the
text's code points and compiled by Numba: on the request path a numpy call costs a microsecond or two whatever its
size and a token in Python about half of one, so the view took some 40 numpy calls or a Python loop per token
(about 0.3 ms for a 300-character prompt on two shared cores, 1 ms at p99); compiled, it is one call. The functions
release Python's lock, so a training thread vectorising thousands of prompts leaves the event loop free.

Hashes are polynomial in ``BASE`` modulo 2**32 (kept in 64-bit integers and masked), then MurmurHash3's finaliser.
Numba compiles each function at its first call (about 15 s on two shared cores) and keeps the machine code in its cache
(``__pycache__`` beside this file, or ``NUMBA_CACHE_DIR``), so later processes load it; `warm_up` compiles
them ahead, as the learned scorer's training thread does before a model is published.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from routerd_learned.learning.token_view import BASE, character_tables, string_hash

_M = np.uint64(0xFFFFFFFF)
_SEPARATOR, _LETTER, _DIGIT, _MARK = 0, 1, 2, 3  # the classes of `character_tables`
# A polynomial hash extends to the right: hash(a + b) = hash(a) + hash(b) * BASE**len(a) (mod 2**32).
_N = string_hash("N")
_NN = string_hash("NN")
_O = string_hash("o:")
_OSHAPE = string_hash("oshape:")
_OPTIONS = string_hash("options:")
_LENGTH = string_hash("length:")
_CHAR_PRIME = 0x01000193


@njit(cache=True, nogil=True)
def _mix(h):
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & _M
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & _M
    return h ^ (h >> np.uint64(16))


@njit(cache=True, nogil=True)
def _extend(h, power, text_codes, count):
    """hash(text + suffix) from hash(text) (`h`), BASE**len(text) (`power`) and the suffix's codes."""
    base = np.uint64(BASE)
    for i in range(count):
        h = (h + np.uint64(text_codes[i]) * power) & _M
        power = (power * base) & _M
    return h, power


@njit(cache=True, nogil=True)
def _decimal_hash(prefix, prefix_length, number):
    """The hash of ``prefix`` followed by `number` in decimal (prefix's hash and length given)."""
    digits = np.zeros(20, dtype=np.int64)
    count = 0
    if number == 0:
        digits[0] = 48
        count = 1
    while number > 0:
        digits[count] = 48 + number % 10
        number //= 10
        count += 1
    reversed_digits = digits[:count][::-1].copy()
    power = np.uint64(1)
    base = np.uint64(BASE)
    for _ in range(prefix_length):
        power = (power * base) & _M
    h, _ = _extend(np.uint64(prefix), power, reversed_digits, count)
    return h


@njit(cache=True, nogil=True)
def buckets(codes, classes_table, alpha_table, wide_classes, wide_alpha, marker_starts, marker_ends, char_bytes,
            n_features, length_bucket):  # fmt: skip
    """(sorted unique columns, their counts) of one prompt: token columns in [0, n_features), character n-gram
    columns in [n_features, 2 n_features).

    `codes`: the lower-cased, clipped prompt's code points; a code point beyond the Basic Multilingual Plane takes
    its class and letterhood from `wide_classes` / `wide_alpha` (one per code point, given only when there is one,
    empty arrays otherwise: `text_features.prompt_columns` decides). `marker_starts` / `marker_ends`: where each
    multiple-choice option's marker is. `char_bytes`: the UTF-8 bytes of the text the character n-grams read.
    `length_bucket`: the ``length:`` token's number.
    """
    size = len(codes)
    base = np.uint64(BASE)
    mask = np.uint64(n_features - 1)
    classes = np.empty(size, dtype=np.int8)
    wide = len(wide_classes) > 0
    for i in range(size):
        classes[i] = wide_classes[i] if wide else classes_table[codes[i]]
    for m in range(len(marker_starts)):
        for i in range(marker_starts[m], marker_ends[m]):
            classes[i] = _SEPARATOR
    # "." or "," between two digits belongs to the number (read from the classes before any change: a changed
    # position is never a neighbour another change looks at, since its neighbours are digits)
    for i in range(1, size - 1):
        c = codes[i]
        if (c == 46 or c == 44) and classes[i - 1] == _DIGIT and classes[i + 1] == _DIGIT:
            classes[i] = _DIGIT
    # tokens: runs of letters, runs of digits, single marks
    # int32 and in place where it can: on the request path this runs with caches cold (the neighbour search
    # before it reads megabytes), where every cache line it writes costs a read from memory first
    starts = np.empty(size, dtype=np.int32)
    ends = np.empty(size, dtype=np.int32)
    tokens = 0
    i = 0
    while i < size:
        k = classes[i]
        if k == _MARK:
            starts[tokens], ends[tokens] = i, i + 1
            tokens += 1
            i += 1
        elif k == _LETTER or k == _DIGIT:
            j = i + 1
            while j < size and classes[j] == k:
                j += 1
            starts[tokens], ends[tokens] = i, j
            tokens += 1
            i = j
        else:
            i += 1
    options = len(marker_ends)
    # each token's part: 0 the question, m the m-th option (the markers' ends at or before its start)
    parts = np.zeros(tokens, dtype=np.int32)
    m = 0
    for t in range(tokens):
        while m < options and marker_ends[m] <= starts[t]:
            m += 1
        parts[t] = m
    hashes = np.empty(tokens, dtype=np.uint64)
    lengths = np.empty(tokens, dtype=np.int32)
    for t in range(tokens):
        s, e = starts[t], ends[t]
        if classes[s] == _DIGIT:
            if e - s > 2:
                hashes[t], lengths[t] = _NN, 2
            else:
                hashes[t], lengths[t] = _N, 1
        else:
            h = np.uint64(0)
            power = np.uint64(1)
            for p in range(s, e):
                h = (h + np.uint64(codes[p]) * power) & _M
                power = (power * base) & _M
            hashes[t], lengths[t] = h, e - s
    question = 0
    while question < tokens and parts[question] == 0:
        question += 1
    # the columns: the question's tokens and bigrams, the options' tokens, each option's shape, the meta tokens
    total = question + max(question - 1, 0) + (tokens - question) + options + 2
    longest = 4
    grams = 0
    chars = len(char_bytes)
    for n in range(2, longest + 1):
        grams += max(chars - n + 1, 0)
    columns = np.empty(total + grams, dtype=np.int64)
    c = 0
    for t in range(question):
        columns[c] = _mix(hashes[t]) & mask
        c += 1
    under = np.uint64(95)
    up = np.empty(64, dtype=np.uint64)  # BASE**i for a bigram's first token of length < 63 (else computed)
    up[0] = 1
    for p in range(1, 64):
        up[p] = (up[p - 1] * base) & _M
    for t in range(question - 1):
        n = lengths[t]
        if n + 1 < 64:
            pn, pn1 = up[n], up[n + 1]
        else:
            pn = np.uint64(1)
            for _ in range(n):
                pn = (pn * base) & _M
            pn1 = (pn * base) & _M
        h = (hashes[t] + under * pn + hashes[t + 1] * pn1) & _M
        columns[c] = _mix(h) & mask
        c += 1
    o = np.uint64(_O)
    for t in range(question, tokens):
        columns[c] = _mix((hashes[t] * up[2] + o) & _M) & mask
        c += 1
    # each option's shape: its first six tokens as N (a number), a (starting with a letter), p (anything else)
    shape_codes = np.empty(6, dtype=np.int64)
    first = question
    for m in range(1, options + 1):
        count = 0
        t = first
        while t < tokens and parts[t] == m:
            if count < 6:
                s = starts[t]
                if classes[s] == _DIGIT:
                    shape_codes[count] = 78  # N
                elif wide_alpha[s] if wide else alpha_table[codes[s]]:
                    shape_codes[count] = 97  # a
                else:
                    shape_codes[count] = 112  # p
                count += 1
            t += 1
        first = t
        h, _ = _extend(np.uint64(_OSHAPE), up[7], shape_codes, count)  # 7: len("oshape:")
        columns[c] = _mix(h) & mask
        c += 1
    columns[c] = _mix(_decimal_hash(_OPTIONS, 8, options)) & mask
    columns[c + 1] = _mix(_decimal_hash(_LENGTH, 7, length_bucket)) & mask
    c += 2
    # character 2-, 3- and 4-grams: a polynomial hash grown one byte at a time, n in the top bits
    prime = np.uint64(_CHAR_PRIME)
    offset = np.uint64(n_features)
    for i in range(chars - 1):
        h = (np.uint64(char_bytes[i]) * prime + np.uint64(char_bytes[i + 1])) & _M
        columns[c] = (_mix(h) & mask) + offset
        c += 1
        for n in range(3, longest + 1):
            if i + n > chars:
                break
            h = (h * prime + np.uint64(char_bytes[i + n - 1])) & _M
            columns[c] = (_mix((h + np.uint64(n << 29)) & _M) & mask) + offset
            c += 1
    columns = columns[:c]
    columns.sort()
    counts = np.empty(c, dtype=np.int32)
    u = -1
    for i in range(c):  # the unique columns written over the sorted ones, each with its count
        if u < 0 or columns[i] != columns[u]:
            u += 1
            columns[u] = columns[i]
            counts[u] = 1
        else:
            counts[u] += 1
    return columns[: u + 1], counts[: u + 1]


@njit(cache=True, nogil=True)
def predict(columns, counts, rows, floats, ints, intercept, n_features):
    """One prompt's predicted quality per model, clipped to [0, 1]: the TF-IDF weights of its `columns` seen
    `counts` times (each view L2-normalised on its own) times their coefficients. `floats` and `ints` are two views
    of the lexical model's table (`routerd_learned.learning.lexical.pack`): per row its IDF and scale (floats[r, 0:2]),
    then its coefficients in units of the scale (ints[r, 8:]); `rows` is each column's row."""
    models = len(intercept)
    size = len(columns)
    weights = np.empty(size, dtype=np.float32)
    split = size
    token_norm = np.float32(0.0)
    char_norm = np.float32(0.0)
    for i in range(size):
        w = floats[rows[columns[i]], 0] * (np.float32(1.0) + np.log(np.float32(counts[i])))
        weights[i] = w
        if columns[i] < n_features:
            token_norm += w * w
        else:
            if split == size:
                split = i
            char_norm += w * w
    token_norm = np.sqrt(token_norm)
    char_norm = np.sqrt(char_norm)
    out = np.zeros(models, dtype=np.float32)
    for i in range(size):
        norm = token_norm if i < split else char_norm
        if norm > 0:
            r = rows[columns[i]]
            w = weights[i] / norm * floats[r, 1]
            for j in range(models):
                out[j] += w * np.float32(ints[r, 8 + j])
    result = np.empty(models, dtype=np.float64)
    for j in range(models):
        value = np.float64(out[j]) + intercept[j]
        result[j] = 0.0 if value < 0.0 else 1.0 if value > 1.0 else value
    return result


def warm_up() -> None:
    """Compile both functions now (or load them from Numba's cache): a fit calls this, so that a request's first
    prediction does not wait for the compiler. Microseconds once they are compiled."""
    classes, alpha = character_tables()
    none = np.zeros(0, dtype=np.int64)
    # the text's arrays read-only, as np.frombuffer makes them: Numba types (and compiles) those apart
    text, chars = np.frombuffer(b"", dtype=np.uint32), np.frombuffer(b"  ", dtype=np.uint8)
    columns, counts = buckets(text, classes, alpha, classes[:0], alpha[:0], none, none, chars, 2, 0)
    table = np.zeros((1, 16), dtype=np.uint8)
    predict(columns, counts, np.zeros(4, dtype=np.int32), table.view(np.float32), table.view(np.int8), np.zeros(1), 2)
