"""Notification receivers and their delivery.

A :class:`Notification` is built once per alert group and sent to receivers built from
config (``receiver_from_config({"type": "webhook", "name": "ops", "url": ...})``):

    webhook    JSON body, ``X-Aiwarden-Signature: sha256=<HMAC-SHA256 of the body>``
    slack      Slack incoming-webhook JSON, coloured by severity
    email      SMTP (starttls / ssl / none), plain-text and HTML parts
    pagerduty  Events API v2, ``dedup_key`` = group key, to a configurable URL

A :class:`Deliverer` queues and retries; every try becomes a :class:`DeliveryAttempt`.

Errors::

    AiwardenError
    ├── ParameterError    a receiver config is invalid; ``field`` names the key
    └── DeliveryError     one send failed; ``retryable``, ``status``, ``retry_after``

Secrets never appear in ``repr``, ``describe()``, logs or errors; they show as ``***``.
"""

from aiwarden.alerting.notifiers.base import (
    MASK,
    SEVERITIES,
    STATUSES,
    DeliveryError,
    Notification,
    Receiver,
    receiver_from_config,
    receiver_types,
    register,
)
from aiwarden.alerting.notifiers.delivery import Deliverer, DeliveryAttempt
from aiwarden.alerting.notifiers.email import EmailReceiver
from aiwarden.alerting.notifiers.pagerduty import PagerDutyReceiver
from aiwarden.alerting.notifiers.slack import SlackReceiver
from aiwarden.alerting.notifiers.webhook import WebhookReceiver, sign

__all__ = [
    "MASK",
    "SEVERITIES",
    "STATUSES",
    "Deliverer",
    "DeliveryAttempt",
    "DeliveryError",
    "EmailReceiver",
    "Notification",
    "PagerDutyReceiver",
    "Receiver",
    "SlackReceiver",
    "WebhookReceiver",
    "receiver_from_config",
    "receiver_types",
    "register",
    "sign",
]
