"""A scorer written for routerd 0.1, when one `Scorer` protocol predicted, judged and learned: registered with
`register_scorers` only, with `score`, `judge` and `learn`."""

import routerd


class OldStyleScorer:
    name = "old_style"

    def __init__(self) -> None:
        self.learnt: list[routerd.Outcome] = []

    async def score(self, features, candidates):
        return {
            m.name: routerd.Contribution(1.0 if m.name == "fake-small" else 0.0, 5.0, "old taste") for m in candidates
        }

    async def judge(self, features, model, answer, reference=None):
        return routerd.Judgement(0.75, "the old judge likes everything a bit")

    async def learn(self, outcome):
        self.learnt.append(outcome)


@routerd.hookimpl
def register_scorers(register, context):
    register(OldStyleScorer())
