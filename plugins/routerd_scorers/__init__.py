"""Builtin scorers, one plugin each so each can be switched off on its own:

- ``size_fit``: a model's size against what the prompt's category and difficulty need;
- ``speed``: how fast a model answers (measured latency once known, its size until then);
- ``cost``: what a call costs (configured prices; local models are free);
- ``diversity``: a model picked too often loses up to half its score;
- ``feedback``: what users said about a model's answers in the prompt's category.
"""
