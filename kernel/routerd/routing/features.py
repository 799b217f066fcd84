"""Prompt features: what routing knows about a conversation before any model sees it.

Everything here is cheap (regular expressions over the text, no model): a few microseconds for
a short prompt. The whole conversation counts, the last user message most: a short "and in
Rust?" after a coding exchange is still coding.

Speed (this runs on every routed request): ASCII text, by far the most common, is lower-cased
once and searched with case-sensitive twins of the case-insensitive patterns, which `re` matches
two to four times faster (`_Pattern`); counts stop at the cap they are used with; language
detection skips the script checks for ASCII text, which no script range can match. The results
are exactly those of the patterns as written.
"""

from __future__ import annotations

import re
from collections import Counter

from routerd.schemas.catalog import PromptFeatures
from routerd.schemas.openai import ChatRequest


class _Text:
    """A text to search, and its lower-cased form when it is ASCII (None otherwise)."""

    __slots__ = ("folded", "raw")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.folded = raw.lower() if raw.isascii() else None


# In a pattern that may be matched against lower-cased text without IGNORECASE: escapes whose
# meaning does not depend on case, and no inline flags.
_CASE_FREE_ESCAPES = set("bBwWsSdDAZntr")
_INLINE_FLAGS = re.compile(r"\(\?[aiLmsux-]")


def _case_sensitive_twin(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """For a case-insensitive ASCII pattern without upper-case letters, the same pattern without
    IGNORECASE: on lower-cased ASCII text it finds exactly what the original finds on the text
    (matches at the same places, since lower-casing ASCII keeps every length). None when that
    cannot be guaranteed."""
    source = pattern.pattern
    if not pattern.flags & re.IGNORECASE or not source.isascii() or _INLINE_FLAGS.search(source):
        return None
    escaped = False
    for char in source:
        if escaped:
            if char.isalnum() and char not in _CASE_FREE_ESCAPES:
                return None  # \x41, \u0041, \N{...}, back-references: leave those alone
            escaped = False
        elif char == "\\":
            escaped = True
        elif char.isupper():
            return None
    return re.compile(source, pattern.flags & ~re.IGNORECASE)


class _Pattern:
    """A compiled pattern, matched through its case-sensitive twin on lower-cased ASCII text."""

    __slots__ = ("pattern", "twin")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.twin = _case_sensitive_twin(pattern)

    def _pick(self, text: _Text) -> tuple[re.Pattern[str], str]:
        if self.twin is not None and text.folded is not None:
            return self.twin, text.folded
        return self.pattern, text.raw

    def count(self, text: _Text, cap: int) -> int:
        """``min(len(findall(text)), cap)``, without looking past the cap-th match."""
        if not text.raw:
            return 0
        pattern, subject = self._pick(text)
        first = pattern.search(subject)  # most patterns find nothing: one search, no iterator
        if first is None:
            return 0
        found = 0
        for _ in pattern.finditer(subject, first.start()):  # the same matches: none starts earlier
            found += 1
            if found >= cap:
                break
        return found

    def search(self, text: _Text) -> bool:
        pattern, subject = self._pick(text)
        return pattern.search(subject) is not None

    def match(self, text: _Text) -> bool:
        pattern, subject = self._pick(text)
        return pattern.match(subject) is not None


CATEGORIES = ("coding", "math", "reasoning", "creativity", "summarization", "translation", "general")

_SIGNALS: dict[str, list[tuple[re.Pattern[str], float]]] = {
    "coding": [
        (re.compile(r"```|\bdef \w+\(|\bfunction\s*\w*\(|\bclass \w+[:({]|=>|#include|\bimport \w+|;\s*$", re.M), 3.0),
        (
            re.compile(
                r"\b(python|javascript|typescript|java|rust|golang|c\+\+|sql|bash|regex|api|json|yaml|"
                r"html|css|dockerfile|kubernetes|compile[rs]?|debug|stack ?trace|exception|traceback|bug|"
                r"refactor|unit tests?|function|variable|algorithm|code|script|program)\b",
                re.I,
            ),
            1.0,
        ),
    ],
    "math": [
        (re.compile(r"\d+\s*[-+*/^=\u00d7\u00f7]\s*\d+|\\frac|\\sqrt|\$[^$]+\$|\u222b|\u2211|\u221a"), 2.0),
        (
            re.compile(
                r"\b(solve|equation|integral|derivative|probability|calculate|compute|how many|how much|"
                r"percent(age)?|sum of|product of|prime|theorem|algebra|geometry|matrix|polynomial|"
                r"statistics|average|ratio|fraction)\b",
                re.I,
            ),
            1.0,
        ),
    ],
    "reasoning": [
        (
            re.compile(
                r"\b(why|explain|reason(ing)?|logic(al)?|prove|proof|deduce|infer|implies|therefore|"
                r"step by step|puzzle|riddle|compare|trade-?offs?|pros and cons|analy[sz]e|evaluate|"
                r"which of the following|true or false)\b",
                re.I,
            ),
            1.0,
        ),
        (re.compile(r"^\s*[A-D][.)]\s", re.M), 1.5),  # multiple choice
    ],
    "creativity": [
        (
            re.compile(
                r"\b(write|compose|create|invent|imagine)\b.{0,40}\b(story|poem|song|lyrics|haiku|limerick|"
                r"novel|scene|script|dialogue|joke|slogan|tagline|essay|letter|speech)\b",
                re.I | re.S,
            ),
            3.0,
        ),
        (re.compile(r"\b(creative|fiction|fantasy|character|plot|rhyme|metaphor|brainstorm|story|poem)\b", re.I), 1.0),
    ],
    "summarization": [
        (re.compile(r"\b(summari[sz]e|summary|tl;?dr|key points|bullet points|condense|shorten)\b", re.I), 3.0),
    ],
    "translation": [
        (
            re.compile(
                r"\btranslat(e|ion)\b|\bin(to)? (english|french|german|spanish|italian|portuguese|chinese|"
                r"japanese|korean|russian|arabic|dutch)\b",
                re.I,
            ),
            3.0,
        ),
    ],
}

_GREETING = re.compile(
    r"^\s*(hi|hello|hey|yo|hiya|howdy|thanks|thank you|thx|good (morning|evening|night)|"
    r"how are you|what'?s up|bye|ok(ay)?|cool)\b[\s!.?,]*\w{0,12}[\s!.?]*$",
    re.I,
)
_CONSTRAINTS = re.compile(
    r"\b(must|should|at least|at most|exactly|without|only|ensure|constraint|requirement|"
    r"edge cases?|optimi[sz]e|complexity|efficient|scalable|production|thread-?safe)\b",
    re.I,
)
_HARD_WORDS = re.compile(
    r"\b(prove|proof|derive|optimi[sz]e|architecture|distributed|concurren\w+|"
    r"asymptotic|np-hard|dynamic programming|formal|rigorous|edge cases?|multi-step)\b",
    re.I,
)
_JSON_ASK = re.compile(
    r"\b(json|yaml|csv)\b.{0,30}\b(format|output|object|schema|only)\b|\brespond (only )?in json\b", re.I | re.S
)

_SCRIPTS = [
    ("zh", re.compile(r"[\u4e00-\u9fff]")), ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")), ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")), ("he", re.compile(r"[\u0590-\u05ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")), ("el", re.compile(r"[\u0370-\u03ff]")),
]  # fmt: skip
_STOPWORDS = {
    "en": {"the", "and", "is", "are", "what", "how", "you", "of", "to", "in", "it", "this", "that", "with"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "ich", "wie", "was", "ein", "eine", "mit", "für"},
    "fr": {"le", "la", "les", "et", "est", "une", "des", "pas", "que", "qui", "pour", "avec", "je", "vous"},
    "es": {"el", "la", "los", "las", "y", "es", "una", "que", "por", "para", "con", "cómo", "qué", "no"},
    "it": {"il", "lo", "gli", "e", "è", "una", "che", "per", "con", "non", "come", "sono", "della"},
    "pt": {"o", "os", "as", "e", "é", "uma", "que", "para", "com", "não", "como", "você", "do", "da"},
    "nl": {"de", "het", "een", "en", "is", "niet", "wat", "hoe", "van", "voor", "met", "ik", "je"},
}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_ASCII_WORD = re.compile(r"[a-z]+")  # what _WORD finds in lower-cased ASCII text

# Each script pattern is one character class, so counting in the characters of any script
# counts the same as counting in the whole text.
_ANY_SCRIPT = re.compile("|".join(pattern.pattern for _, pattern in _SCRIPTS))
_ALL_STOPWORDS = frozenset().union(*_STOPWORDS.values())
_LANGUAGES_OF = {word: [code for code, words in _STOPWORDS.items() if word in words] for word in _ALL_STOPWORDS}

_SIGNAL_PATTERNS = {
    category: [(_Pattern(pattern), weight) for pattern, weight in signals] for category, signals in _SIGNALS.items()
}
_GREETING_PATTERN = _Pattern(_GREETING)
_CONSTRAINT_PATTERN = _Pattern(_CONSTRAINTS)
_HARD_PATTERN = _Pattern(_HARD_WORDS)
_JSON_PATTERN = _Pattern(_JSON_ASK)


def detect_language(text: str) -> str:
    """An ISO 639-1 guess: by script for non-Latin text, by stop words for Latin text."""
    sample = text[:2000]
    if sample.isascii():  # no script range holds an ASCII character
        words = Counter(_ASCII_WORD.findall(sample.lower()))
    else:
        scripts = "".join(_ANY_SCRIPT.findall(sample))
        if len(scripts) >= 3:
            for code, pattern in _SCRIPTS:
                if len(pattern.findall(scripts)) >= 3:
                    return code
        words = Counter(w.lower() for w in _WORD.findall(sample))
    common = words.keys() & _ALL_STOPWORDS
    if not common:
        return "en"
    hits = dict.fromkeys(_STOPWORDS, 0)
    for word in common:
        for code in _LANGUAGES_OF[word]:
            hits[code] += words[word]
    best, most = "en", 0
    for code, count in hits.items():
        if count > most:
            best, most = code, count
    return best


def _category(last: _Text, earlier: _Text) -> str:
    best, best_score = "", 0.0
    for category, signals in _SIGNAL_PATTERNS.items():
        total = 0.0
        for pattern, weight in signals:
            total += weight * pattern.count(last, 5) + 0.3 * weight * pattern.count(earlier, 5)
        if not best or total > best_score:  # the first of equal scores wins, as with max()
            best, best_score = category, total
    return best if best_score >= 1.0 else "general"


def _difficulty(text: _Text, tokens: int, category: str) -> str:
    last = text.raw
    words = len(last.split())
    if _GREETING_PATTERN.match(text) or (words <= 6 and category == "general" and "?" not in last[:-1]):
        return "simple"
    points = 0
    points += 2 if tokens > 600 else 1 if tokens > 150 else 0
    points += _CONSTRAINT_PATTERN.count(text, 3)
    points += 2 * _HARD_PATTERN.count(text, 2)
    points += 1 if last.count("\n") > 8 or last.count("?") > 2 else 0
    points += 1 if category in ("coding", "math", "reasoning") and words > 40 else 0
    if points >= 4:
        return "hard"
    if points == 0 and words < 12:
        return "simple"
    return "medium"


def extract_features(request: ChatRequest) -> PromptFeatures:
    """The features of a whole conversation."""
    messages = request.messages
    texts = [m.text() for m in messages]
    users = [text for m, text in zip(messages, texts, strict=True) if m.role == "user"]
    last = users[-1] if users else (texts[-1] if texts else "")
    earlier = "\n".join(
        text for m, text in zip(messages[:-1], texts[:-1], strict=True) if m.role in ("user", "system", "assistant")
    )
    tokens = sum(map(len, texts)) // 4
    last_text = _Text(last)
    category = _category(last_text, _Text(earlier))
    return PromptFeatures(
        text=last,
        category=category,
        difficulty=_difficulty(last_text, tokens, category),
        language=detect_language(last or earlier),
        needs_vision=any(m.has_image() for m in messages),
        needs_tools=bool(request.tools),
        needs_json=request.wants_json() or _JSON_PATTERN.search(last_text),
        prompt_tokens=tokens,
    )
