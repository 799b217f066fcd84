"""llama-cpp-python's server, with one more chat format: ``transcript``, which the bundled model is served with.
The local backend runs this file (by its path, so that starting a model does not import routerd) with
``llama_cpp.server``'s own arguments.

Why: the bundled GGUF is the pretrained Gemma 3 270M, not the instruction-tuned one (its metadata has no chat
template). It never learnt Gemma's turn tokens: in Gemma's chat format it gives ``<end_of_turn>`` a probability
under 1e-4 where its answer ends, writes a stray token instead ("Hi! mendatang"), then a user turn of its own, and
goes on until the context is full. A plain-text transcript (a preamble, ``User: ...``, ``Assistant: ...``) is what
text it was trained on looks like: it answers in a line or two and ends its turn by starting the next
``User:`` line, which the format's stop strings catch (23 of 24 test prompts stopped within 150 tokens, against
none in Gemma's format). Leading and trailing blanks of the answer are trimmed, streamed or not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

TRANSCRIPT = "transcript"
# Vicuna's preamble (FastChat), as text a pretrained model has met before chat transcripts; a system message of
# the request's replaces it.
PREAMBLE = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions."
)
ROLES = {"user": "User", "assistant": "Assistant", "tool": "Tool", "function": "Tool"}
STOP = ["\nUser:", "\nAssistant:", "\nTool:"]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: the text ones
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def transcript_prompt(messages: list[dict[str, Any]]) -> str:
    """The prompt for a conversation: the preamble (or the request's system messages), then one
    ``Role: text`` line per message, then ``Assistant:`` for the model to go on from."""
    system = "\n".join(_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer"))
    lines = [system.strip() or PREAMBLE, ""]
    for message in messages:
        role = ROLES.get(str(message.get("role")))
        if role is not None:
            lines.append(f"{role}: {_text(message.get('content')).strip()}")
    lines.append("Assistant:")
    return "\n".join(lines)


def _trimmed_stream(chunks: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """A stream's chunks with the answer's leading blanks dropped and blanks held back until more text follows
    (so the answer's trailing blanks never go out)."""
    started = False
    held = ""
    for chunk in chunks:
        for choice in chunk.get("choices", []):
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if not text:
                continue
            if not started:
                text = text.lstrip()
                started = bool(text)
            text = held + text
            body = text.rstrip()
            held = text[len(body) :]
            delta["content"] = body
        yield chunk


def register() -> None:
    """Register the ``transcript`` chat format with llama-cpp-python (its handler: the format's prompt and stop
    strings, the answer trimmed)."""
    from llama_cpp import llama_chat_format as formats

    def formatter(messages: list[dict[str, Any]], **_: Any) -> formats.ChatFormatterResponse:
        return formats.ChatFormatterResponse(prompt=transcript_prompt(messages), stop=list(STOP))

    plain = formats.chat_formatter_to_chat_completion_handler(formatter)

    def handler(**kwargs: Any) -> Any:
        answer = plain(**kwargs)
        if kwargs.get("stream"):
            return _trimmed_stream(answer)
        for choice in answer["choices"]:
            message = choice.get("message") or {}
            if isinstance(message.get("content"), str):
                message["content"] = message["content"].strip()
        return answer

    formats.register_chat_completion_handler(TRANSCRIPT)(handler)


def main() -> None:
    from llama_cpp.server.__main__ import main as serve

    register()
    serve()


if __name__ == "__main__":
    main()
