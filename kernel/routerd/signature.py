"""The response signature: ``Model: <name>`` appended to answers, never doubled.

A signature from an earlier turn that a client sends back in the conversation is stripped
before the model sees it, so models do not learn to echo it; one a model echoes anyway is
stripped from its answer (held back at the end of a stream until it is clear) before the real
one is appended.
"""

from __future__ import annotations

import re

from routerd.schemas.openai import ChatRequest


class Signature:
    def __init__(self, template: str) -> None:
        self.template = template
        line = template.strip()
        self.enabled = bool(line)
        self.marker = line.split("{model}")[0] if self.enabled else ""
        pattern = re.escape(line).replace(re.escape("{model}"), r"[^\n]{1,200}") if self.enabled else "(?!)"
        self._trailing = re.compile(r"(?:\A|\s*\n)[ \t]*" + pattern + r"\s*\Z")
        # The most characters from a signature's start to its end: the line, each {model} at most 200.
        self._longest = len(line) + (200 - len("{model}")) * line.count("{model}")

    def render(self, model: str) -> str:
        return self.template.replace("{model}", model) if self.enabled else ""

    def strip(self, text: str) -> str:
        """`text` without the signatures it ends with (and the blank lines before them)."""
        if not self.enabled:
            return text
        while True:
            found = self._trailing_signature(text)
            if found is None:
                return text
            text = text[: found.start()]

    def _trailing_signature(self, text: str) -> re.Match[str] | None:
        """The match of the trailing-signature pattern, searched from just before where it can
        start rather than from the beginning: answers and conversations are long, signatures are
        at their ends. A signature ends among the text's trailing blanks and starts with the marker,
        at most `_longest` characters before that; the match begins at the blank run before the
        marker's line (or at the start of the text); a search from there finds what a search from
        the start finds (``\\A`` matches only at the real start)."""
        marker = self.marker
        if not marker:  # a template that starts with {model}: no literal to look for
            return self._trailing.search(text)
        earliest = max(0, len(text.rstrip()) - self._longest)
        at = text.find(marker, earliest)
        if at == -1:
            return None
        begin = text.rfind("\n", 0, at)
        if begin == -1:
            begin = 0
        while begin > 0 and text[begin - 1].isspace():
            begin -= 1
        return self._trailing.search(text, begin)

    def clean_request(self, request: ChatRequest) -> None:
        """Strip echoed signatures from the assistant turns of a conversation, in place."""
        if not self.enabled:
            return
        for message in request.messages:
            if message.role == "assistant" and isinstance(message.content, str):
                message.content = self.strip(message.content)

    def holdback(self) -> StreamHoldback:
        return StreamHoldback(self)


class StreamHoldback:
    """Passes streamed text through, holding back a tail that may be an echoed signature."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.pending = ""

    def _hold_from(self, text: str) -> int:
        """Where the part that may be an echoed signature starts: the first line break followed
        by the marker, by a beginning of it, or by nothing but blanks yet (models often send the
        line breaks before ``Model:`` as a chunk of their own); the end of `text` otherwise."""
        marker = self.signature.marker
        newline = text.find("\n")
        while newline != -1:
            tail = text[newline + 1 :].lstrip()
            if tail.startswith(marker) or marker.startswith(tail):
                return newline
            newline = text.find("\n", newline + 1)
        return len(text)

    def feed(self, text: str) -> str:
        """The part of `text` (plus what was held) that is safe to send now."""
        if not self.signature.enabled:
            return text
        text = self.pending + text
        cut = self._hold_from(text)
        self.pending = text[cut:]
        return text[:cut]

    def finish(self) -> str:
        """What was held back, minus an echoed signature."""
        pending, self.pending = self.pending, ""
        return self.signature.strip(pending)
