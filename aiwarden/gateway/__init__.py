"""The serving gateway: predict with the version behind an alias, split traffic between
versions (canary, shadow, A/B), and log every prediction to monitoring without ever
slowing it down (docs/gateway.md).

>>> from aiwarden.gateway import TrafficPolicy
>>> TrafficPolicy.from_dict({"mode": "shadow", "challenger": "@challenger"}).to_dict()
{'mode': 'shadow', 'challenger': '@challenger'}
"""

from aiwarden.gateway._errors import GatewayError, InvalidRequestError, PredictionError
from aiwarden.gateway._rows import shadow_id
from aiwarden.gateway.events import EventQueue
from aiwarden.gateway.gateway import Gateway
from aiwarden.gateway.hub import GatewayHub
from aiwarden.gateway.policies import PolicyStore
from aiwarden.gateway.policy import MODES, TrafficPolicy, parse_weights
from aiwarden.gateway.sources import (
    DatabaseSource,
    RemoteSource,
    ServingState,
    client_sink,
    monitor_sink,
)
from aiwarden.gateway.usage import UsageReporter

__all__ = [
    "MODES", "DatabaseSource", "EventQueue", "Gateway", "GatewayError", "GatewayHub",
    "InvalidRequestError", "PolicyStore", "PredictionError", "RemoteSource", "ServingState",
    "TrafficPolicy", "UsageReporter", "client_sink", "monitor_sink", "parse_weights",
    "shadow_id",
]
