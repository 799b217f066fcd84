"""Routing: from a request to a ranked list of models, with the reasons.

`Needs` are the hard constraints; `engine.Router.decide` applies them, asks the scorer plugins and returns a
`RoutingDecision`."""

from routerd.routing.decision import Needs, RoutingDecision

__all__ = ["Needs", "RoutingDecision"]
