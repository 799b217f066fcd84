"""The chat request pipeline after authentication and decoding: caches, routing, dispatch with the skill loop,
the answer (JSON or a stream), the decision log. `chat.ChatPipeline` runs it; the HTTP handler stays thin."""
