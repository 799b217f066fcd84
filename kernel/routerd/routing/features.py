"""Prompt features: what routing knows about a conversation before any model sees it.

Everything here is cheap (one pass over the words, a few regular expressions, no model): tens of
microseconds for a short prompt, and bounded for a long one. The whole conversation counts, the
last user message most: a short "and in Rust?" after a coding exchange is still coding.

How it stays cheap (this runs on every routed request):

- Keyword signals are tables of words and phrases, not a regular expression each: the text is
  lower-cased and split into words once, and one loop over the words counts every signal, the
  phrases ("step by step", "edge cases") and the stop words that tell the language included. A
  keyword alternation costs Python's `re` about 0.05 us per character of text; the dozen this
  module had cost a long prompt more than the rest of the routing decision.
- The few patterns left (code syntax, arithmetic, multiple-choice options, "write ... a poem",
  "... in JSON format") run only when the words or characters they cannot match without are there.
- A long message is read in a window: its first `HEAD` and last `TAIL` characters (the ask is
  nearly always at one end); the conversation before it by its last `EARLIER_TAIL` characters.
"""

from __future__ import annotations

import re

from routerd.schemas.catalog import PromptFeatures
from routerd.schemas.openai import ChatRequest

HEAD, TAIL = 1500, 500  # the window of a long message
EARLIER_TAIL = 2000  # the window of the conversation before it
CAP = 5  # a signal counts at most this many times

CATEGORIES = ("coding", "math", "reasoning", "creativity", "summarization", "translation", "general")


def window(text: str, head: int = HEAD, tail: int = TAIL) -> str:
    """The text itself, or its first `head` and last `tail` characters."""
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n" + text[-tail:]


# -- keyword signals: single words (space-separated), then phrases of consecutive words ----------------------------
_LANGUAGE_NAMES = "english french german spanish italian portuguese chinese japanese korean russian arabic dutch"
_KEYWORDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "coding": (
        "python javascript typescript java rust golang sql bash regex api json yaml html css dockerfile kubernetes "
        "compile compiler compilers compiles debug stacktrace exception traceback bug refactor function variable "
        "algorithm code script program",
        ("stack trace", "unit test", "unit tests"),
    ),
    "math": (
        "solve equation integral derivative probability calculate compute percent percentage prime theorem algebra "
        "geometry matrix polynomial statistics average ratio fraction",
        ("how many", "how much", "sum of", "product of"),
    ),
    "reasoning": (
        "why explain reason reasoning logic logical prove proof deduce infer implies therefore puzzle riddle compare "
        "tradeoff tradeoffs analyse analyze evaluate",
        ("step by step", "trade off", "trade offs", "pros and cons", "which of the following", "true or false"),
    ),
    "creativity": ("creative fiction fantasy character plot rhyme metaphor brainstorm story poem", ()),
    "summarization": ("summarise summarize summary tldr condense shorten", ("tl dr", "key points", "bullet points")),
    "translation": (
        "translate translation",
        tuple(f"{into} {name}" for name in _LANGUAGE_NAMES.split() for into in ("in", "into")),
    ),
    # difficulty
    "constraint": (
        "must should exactly without only ensure constraint requirement optimise optimize complexity efficient "
        "scalable production threadsafe",
        ("at least", "at most", "edge case", "edge cases", "thread safe"),
    ),
    "hard": (
        "prove proof derive optimise optimize architecture distributed concurrency concurrent concurrently "
        "asymptotic formal rigorous",
        ("np hard", "dynamic programming", "edge case", "edge cases", "multi step"),
    ),
}
# Stop words: Latin-script text's language is the one whose stop words it uses most.
_STOPWORDS = {
    "en": "the and is are what how you of to in it this that with",
    "de": "der die das und ist nicht ich wie was ein eine mit für",
    "fr": "le la les et est une des pas que qui pour avec je vous",
    "es": "el la los las y es una que por para con cómo qué no",
    "it": "il lo gli e è una che per con non come sono della",
    "pt": "o os as e é uma que para com não como você do da",
    "nl": "de het een en is niet wat hoe van voor met ik je",
}
LANGUAGE_WORDS = 400  # the stop words are counted among the message's first this many words
LANGUAGE_CHARS = 2000  # the script of non-Latin text is read in the first this many characters

_SIGNALS = (*_KEYWORDS, *_STOPWORDS)
_FIRST_LANGUAGE = len(_KEYWORDS)  # signals from here on are languages
_INDEX = {name: i for i, name in enumerate(_SIGNALS)}


def _tables() -> dict[str, tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]]:
    """first word -> ((the phrase's further words, the signals it counts for), ...), longest phrases first."""
    found: dict[str, dict[tuple[str, ...], list[int]]] = {}
    for name, (words, phrases) in _KEYWORDS.items():
        for entry in [(w,) for w in words.split()] + [tuple(p.split()) for p in phrases]:
            found.setdefault(entry[0], {}).setdefault(entry[1:], []).append(_INDEX[name])
    for code, words in _STOPWORDS.items():
        for word in words.split():
            found.setdefault(word, {}).setdefault((), []).append(_INDEX[code])
    return {
        first: tuple((rest, tuple(signals)) for rest, signals in sorted(entries.items(), key=lambda kv: -len(kv[0])))
        for first, entries in found.items()
    }


_TABLE = _tables()
_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits (what `\b...\b` delimits, less the underscore)
_ASCII_WORD = re.compile(r"[a-z0-9]+")  # the same in lower-cased ASCII text, faster


def _words(lowered: str) -> list[str]:
    return (_ASCII_WORD if lowered.isascii() else _WORD).findall(lowered)


def count_signals(words: list[str], language_words: int = LANGUAGE_WORDS) -> list[int]:
    """How often each signal's words and phrases occur (a phrase once, not its words again); stop words
    only among the first `language_words` words."""
    counts = [0] * len(_SIGNALS)
    table = _TABLE.get
    size = len(words)
    for i, word in enumerate(words):
        entries = table(word)
        if entries is None:
            continue
        for rest, signals in entries:
            if rest:
                n = len(rest)
                if i + n >= size or tuple(words[i + 1 : i + 1 + n]) != rest:
                    continue
            for signal in signals:
                if signal < _FIRST_LANGUAGE or i < language_words:
                    counts[signal] += 1
            break  # the longest phrase that matches: "edge cases" is not "edge case" too
    return counts


# -- patterns, each run only when what it cannot match without is in the text ------------------------------------
_CODE_SYNTAX = re.compile(r"\bdef \w+\(|\bfunction\s*\w*\(|\bclass \w+[:({]|\bimport \w+")
_CODE_NEEDLES = ("def ", "function", "class ", "import ")
_CODE_LITERALS = ("```", "=>", "#include")
_LINE_END_SEMICOLON = re.compile(r";[ \t]*$", re.M)
# an operator between digits (a space either side allowed): found from the operators, rarer than digits
_ARITHMETIC = re.compile(r"[-+*/^=\u00d7\u00f7](?:(?<=\d.)|(?<=\d\s.))\s*\d")
_NOTATION = re.compile(r"\\frac|\\sqrt|\$[^$]+\$|[\u222b\u2211\u221a]")  # TeX; integral, sum, root
_NOTATION_NEEDLES = ("\\", "$", "\u222b", "\u2211", "\u221a")
_OPTION = re.compile(r"^\s*[A-D][.)]\s", re.M)  # multiple choice
_CREATIVE_ASK = re.compile(
    r"\b(write|compose|create|invent|imagine)\b.{0,40}\b(story|poem|song|lyrics|haiku|limerick|"
    r"novel|scene|script|dialogue|joke|slogan|tagline|essay|letter|speech)\b",
    re.I | re.S,
)
_CREATIVE_VERBS = frozenset(("write", "compose", "create", "invent", "imagine"))
_JSON_ASK = re.compile(
    r"\b(json|yaml|csv)\b.{0,30}\b(format|output|object|schema|only)\b|\brespond (only )?in json\b", re.I | re.S
)
_JSON_WORDS = frozenset(("json", "yaml", "csv", "respond"))
_GREETING = re.compile(
    r"^\s*(hi|hello|hey|yo|hiya|howdy|thanks|thank you|thx|good (morning|evening|night)|"
    r"how are you|what'?s up|bye|ok(ay)?|cool)\b[\s!.?,]*\w{0,12}[\s!.?]*$",
    re.I,
)
_SCRIPTS = [
    ("zh", re.compile(r"[\u4e00-\u9fff]")), ("ja", re.compile(r"[\u3040-\u30ff]")),
    ("ko", re.compile(r"[\uac00-\ud7af]")), ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")), ("he", re.compile(r"[\u0590-\u05ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")), ("el", re.compile(r"[\u0370-\u03ff]")),
]  # fmt: skip
# Each script pattern is one character class, so counting in the characters of any script counts the same as
# counting in the whole text.
_ANY_SCRIPT = re.compile("|".join(pattern.pattern for _, pattern in _SCRIPTS))

_STRUCTURE = ("code_syntax", "arithmetic", "options", "creative_ask")
_INDEX.update({name: len(_SIGNALS) + i for i, name in enumerate(_STRUCTURE)})


def _count(pattern: re.Pattern[str], text: str, cap: int = CAP) -> int:
    """``min(len(pattern.findall(text)), cap)``, without looking past the cap-th match."""
    found = 0
    for _ in pattern.finditer(text):
        found += 1
        if found >= cap:
            break
    return found


class _Reading:
    """One text's signals: the keyword and stop-word counts, then the structural patterns' (`_STRUCTURE`,
    each counted up to `CAP`); its words; whether it asks for JSON."""

    __slots__ = ("counts", "json", "words")

    def __init__(self, text: str, language_words: int = LANGUAGE_WORDS) -> None:
        lowered = text.lower()
        self.words = words = _words(lowered)
        counts = count_signals(words, language_words)
        if "c++" in lowered:  # a keyword the words cannot see
            counts[_INDEX["coding"]] += lowered.count("c++")
        code = sum(min(text.count(literal), CAP) for literal in _CODE_LITERALS)
        if any(needle in text for needle in _CODE_NEEDLES):
            code += _count(_CODE_SYNTAX, text)
        if ";" in text:
            code += _count(_LINE_END_SEMICOLON, text)
        counts.append(code)
        arithmetic = _count(_ARITHMETIC, text)
        if any(needle in text for needle in _NOTATION_NEEDLES):
            arithmetic += _count(_NOTATION, text)
        counts.append(arithmetic)
        counts.append(_count(_OPTION, text))
        counts.append(_count(_CREATIVE_ASK, text) if _CREATIVE_VERBS.intersection(words) else 0)
        self.counts = counts
        self.json = bool(_JSON_WORDS.intersection(words)) and _JSON_ASK.search(text) is not None

    def signal(self, name: str, cap: int = CAP) -> int:
        found = self.counts[_INDEX[name]]
        return found if found < cap else cap


# The category scores: weight per signal; the same signals in the earlier conversation count 0.3 times as much.
_CATEGORY_SIGNALS = {
    "coding": (("code_syntax", 3.0), ("coding", 1.0)),
    "math": (("arithmetic", 2.0), ("math", 1.0)),
    "reasoning": (("reasoning", 1.0), ("options", 1.5)),
    "creativity": (("creative_ask", 3.0), ("creativity", 1.0)),
    "summarization": (("summarization", 3.0),),
    "translation": (("translation", 3.0),),
}


def _category(last: _Reading, earlier: _Reading | None) -> str:
    best, best_score = "", 0.0
    for category, signals in _CATEGORY_SIGNALS.items():
        total = 0.0
        for name, weight in signals:
            total += weight * last.signal(name)
            if earlier is not None:
                total += 0.3 * weight * earlier.signal(name)
        if not best or total > best_score:  # the first of equal scores wins, as with max()
            best, best_score = category, total
    return best if best_score >= 1.0 else "general"


def detect_language(text: str) -> str:
    """An ISO 639-1 guess: by script for non-Latin text, by stop words for Latin text."""
    return _language(text, _Reading(window(text)))


def _language(text: str, reading: _Reading) -> str:
    sample = text[:LANGUAGE_CHARS]
    if not sample.isascii():  # no script range holds an ASCII character
        scripts = "".join(_ANY_SCRIPT.findall(sample))
        if len(scripts) >= 3:
            for code, pattern in _SCRIPTS:
                if len(pattern.findall(scripts)) >= 3:
                    return code
    best, most = "en", 0
    for code in _STOPWORDS:
        count = reading.counts[_INDEX[code]]
        if count > most:
            best, most = code, count
    return best


def _difficulty(text: str, reading: _Reading, tokens: int, category: str) -> str:
    words = len(reading.words)
    if _GREETING.match(text) or (words <= 6 and category == "general" and "?" not in text[:-1]):
        return "simple"
    points = 0
    points += 2 if tokens > 600 else 1 if tokens > 150 else 0
    points += reading.signal("constraint", 3)
    points += 2 * reading.signal("hard", 2)
    points += 1 if text.count("\n") > 8 or text.count("?") > 2 else 0
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
    seen = window(last)
    reading = _Reading(seen)
    before = _Reading(earlier[-EARLIER_TAIL:]) if earlier else None
    category = _category(reading, before)
    language = _language(last, reading) if last else detect_language(earlier)
    return PromptFeatures(
        text=last,
        category=category,
        difficulty=_difficulty(last, reading, tokens, category),
        language=language,
        needs_vision=any(m.has_image() for m in messages),
        needs_tools=bool(request.tools),
        needs_json=request.wants_json() or reading.json,
        prompt_tokens=tokens,
    )
