"""Incidents: alerts grouped per model and key, their lifecycle, escalation and postmortems.

``lifecycle`` and ``postmortem`` are pure; ``store`` maps them to tables; ``service`` is
what the server, the CLI and the evaluation loop call.
"""

from aiwarden.incidents.lifecycle import (
    TRANSITIONS,
    Comment,
    DueStep,
    EscalationPolicy,
    EscalationStep,
    Incident,
    IncidentAlert,
    Progress,
    ResponseTimes,
    Status,
    TimelineEntry,
    due_steps,
    response_times,
    transition,
)
from aiwarden.incidents.postmortem import Postmortem, draft
from aiwarden.incidents.service import AlertInfo, Escalation, IncidentService, StoredPostmortem

__all__ = [
    "TRANSITIONS", "AlertInfo", "Comment", "DueStep", "Escalation", "EscalationPolicy",
    "EscalationStep", "Incident", "IncidentAlert", "IncidentService", "Postmortem", "Progress",
    "ResponseTimes", "Status", "StoredPostmortem", "TimelineEntry", "draft", "due_steps",
    "response_times", "transition",
]
