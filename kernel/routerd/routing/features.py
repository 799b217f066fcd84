"""Prompt features: what routing knows about a conversation before any model sees it.

Everything here is cheap (regular expressions over the text, no model): a few tens of
microseconds for a typical prompt. The whole conversation counts, the last user message most:
a short "and in Rust?" after a coding exchange is still coding.
"""

from __future__ import annotations

import re
from collections import Counter

from routerd.schemas.catalog import PromptFeatures
from routerd.schemas.openai import ChatRequest

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


def detect_language(text: str) -> str:
    """An ISO 639-1 guess: by script for non-Latin text, by stop words for Latin text."""
    sample = text[:2000]
    for code, pattern in _SCRIPTS:
        if len(pattern.findall(sample)) >= 3:
            return code
    words = Counter(w.lower() for w in _WORD.findall(sample))
    best, hits = "en", 0
    for code, stopwords in _STOPWORDS.items():
        count = sum(words[w] for w in stopwords)
        if count > hits:
            best, hits = code, count
    return best


def _category(last: str, earlier: str) -> str:
    scores: dict[str, float] = {}
    for category, signals in _SIGNALS.items():
        total = 0.0
        for pattern, weight in signals:
            total += weight * min(len(pattern.findall(last)), 5) + 0.3 * weight * min(len(pattern.findall(earlier)), 5)
        scores[category] = total
    category, score = max(scores.items(), key=lambda item: item[1])
    return category if score >= 1.0 else "general"


def _difficulty(last: str, tokens: int, category: str) -> str:
    words = len(last.split())
    if _GREETING.match(last) or (words <= 6 and category == "general" and "?" not in last[:-1]):
        return "simple"
    points = 0
    points += 2 if tokens > 600 else 1 if tokens > 150 else 0
    points += min(len(_CONSTRAINTS.findall(last)), 3)
    points += 2 * min(len(_HARD_WORDS.findall(last)), 2)
    points += 1 if last.count("\n") > 8 or last.count("?") > 2 else 0
    points += 1 if category in ("coding", "math", "reasoning") and words > 40 else 0
    if points >= 4:
        return "hard"
    if points == 0 and words < 12:
        return "simple"
    return "medium"


def extract_features(request: ChatRequest) -> PromptFeatures:
    """The features of a whole conversation."""
    users = [m.text() for m in request.messages if m.role == "user"]
    last = users[-1] if users else (request.messages[-1].text() if request.messages else "")
    earlier = "\n".join(m.text() for m in request.messages[:-1] if m.role in ("user", "system", "assistant"))
    prompt_chars = sum(len(m.text()) for m in request.messages)
    tokens = prompt_chars // 4
    category = _category(last, earlier)
    return PromptFeatures(
        text=last,
        category=category,
        difficulty=_difficulty(last, tokens, category),
        language=detect_language(last or earlier),
        needs_vision=any(m.has_image() for m in request.messages),
        needs_tools=bool(request.tools),
        needs_json=request.wants_json() or bool(_JSON_ASK.search(last)),
        prompt_tokens=tokens,
    )
