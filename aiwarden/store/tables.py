"""The tables. Times are float epoch seconds so SQLite and PostgreSQL store them alike.

Raw rows are stored per ingest request as one Parquet blob (``event_batches``);
``predictions`` is the narrow per-row index that makes ingest idempotent and lets
late labels find their row. Bucket profiles are appended as partials at every
rollup level and compacted in the background, so writers never update in place.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "alert_events", "alert_instances", "alert_rules", "api_keys", "bucket_profiles",
    "event_batches", "labels", "leases", "metadata", "model_versions", "models", "predictions",
    "quarantine",
]

metadata = MetaData()

models = Table(
    "models", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("task", String(20)),
    Column("description", Text),
    Column("created_at", Float, nullable=False),
)

model_versions = Table(
    "model_versions", metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("version", String(200), nullable=False),
    Column("schema", Text),  # Schema.to_dict() as JSON
    Column("reference", LargeBinary),  # compressed Reference.to_dict()
    Column("fingerprint", String(64)),
    Column("sample", LargeBinary),  # Parquet: a bounded random sample of reference rows
    Column("reference_rows", BigInteger),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", String(32), nullable=False, unique=True),  # public prefix of the key
    Column("hash", String(128), nullable=False),  # scrypt of the secret part
    Column("salt", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("scopes", String(100), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

event_batches = Table(
    "event_batches", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("n_rows", Integer, nullable=False),
    Column("min_ts", Float, nullable=False),
    Column("max_ts", Float, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("data", LargeBinary, nullable=False),  # Parquet of the accepted rows
    Index("ix_event_batches_model_ts", "model_id", "max_ts"),
)

predictions = Table(
    "predictions", metadata,
    Column("model_id", Integer, primary_key=True),
    Column("prediction_id", String(200), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("ts", Float, nullable=False),
    Column("batch_id", BigInteger, nullable=False),
    Column("row_idx", Integer, nullable=False),
)

labels = Table(
    "labels", metadata,
    Column("model_id", Integer, primary_key=True),
    Column("prediction_id", String(200), primary_key=True),
    Column("label", Text, nullable=False),  # the value as text; typed at join time
    Column("received_at", Float, nullable=False),
    Column("joined", Boolean, nullable=False, default=False),
    Index("ix_labels_pending", "model_id", "joined"),
)

bucket_profiles = Table(
    "bucket_profiles", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("level", Integer, nullable=False),  # bucket width in seconds
    Column("start", BigInteger, nullable=False),  # epoch seconds, a multiple of level
    Column("n_rows", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_bucket_profiles_key", "model_id", "version_id", "level", "start"),
)

# Bucket partials of one segment ("country=BR"): the same rows as ``bucket_profiles``, kept
# apart so whole-model reads never decode them (docs/server.md, Segments).
segment_profiles = Table(
    "segment_profiles", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("version_id", Integer, nullable=False),
    Column("segment", String(300), nullable=False),  # "<column>=<value>" or "<column>=__other__"
    Column("level", Integer, nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Index("ix_segment_profiles_key", "model_id", "version_id", "segment", "level", "start"),
)
__all__ += ["segment_profiles"]

quarantine = Table(
    "quarantine", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("ts", Float, nullable=False),
    Column("prediction_id", String(200)),
    Column("field", String(300)),
    Column("reason", Text, nullable=False),
    Column("payload", Text),
    # the version whose buckets counted it (NULL: none; 0: kept before migration 0012)
    Column("version_id", Integer),
    Index("ix_quarantine_model", "model_id", "received_at"),
    Index("ix_quarantine_prediction", "model_id", "prediction_id"),
    sqlite_autoincrement=True,  # ids never reused: a retried replay or drop names one row
)

alert_rules = Table(
    "alert_rules", metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(200), nullable=False),  # a model name, or "*" for every model
    Column("name", String(200), nullable=False),
    Column("source", String(20), nullable=False),  # default | apply | api
    Column("spec", Text, nullable=False),  # the rule as JSON
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("model", "name", name="uq_alert_rules_model_name"),
)

alert_instances = Table(
    "alert_instances", metadata,
    Column("id", Integer, primary_key=True),
    Column("rule_id", Integer, ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False),
    Column("model_id", Integer, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("labels", Text, nullable=False),
    Column("state", Text, nullable=False),  # AlertState.to_dict() as JSON
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("rule_id", "model_id", "fingerprint", name="uq_alert_instances_key"),
)

alert_events = Table(
    "alert_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("instance_id", Integer, ForeignKey("alert_instances.id", ondelete="CASCADE"),
           nullable=False),
    Column("kind", String(30), nullable=False),
    Column("at", Float, nullable=False),
    Column("severity", String(20)),
    Column("value", Float),
    Column("detail", Text),
    Index("ix_alert_events_instance", "instance_id", "at"),
)

leases = Table(
    "leases", metadata,
    Column("name", String(100), primary_key=True),
    Column("holder", String(100), nullable=False),
    Column("expires_at", Float, nullable=False),
)

# -- incidents: one open incident per (model, dedup key), its alerts, timeline, escalation --

__all__ += ["escalation_progress", "incident_alerts", "incident_events", "incidents"]

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True),
    Column("model", String(200), nullable=False),
    Column("dedup_key", String(300), nullable=False),
    # dedup_key while open, NULL once closed: the unique constraint allows one open incident
    # per key even with concurrent openers, and any number of closed ones
    Column("open_key", String(300)),
    Column("title", Text, nullable=False),
    Column("severity", String(20)),
    Column("status", String(20), nullable=False),
    Column("assignee", String(200)),
    Column("created_at", Float, nullable=False),
    Column("acknowledged_at", Float),
    Column("mitigated_at", Float),
    Column("resolved_at", Float),
    Column("declined_at", Float),
    Column("held_open", Boolean, nullable=False, default=False),
    Column("runbooks", Text, nullable=False),  # JSON list
    Column("postmortem", Text),  # markdown: the draft, then the edited text
    Column("postmortem_by", String(200)),  # NULL while it is still the system's draft
    Column("postmortem_at", Float),
    UniqueConstraint("model", "open_key", name="uq_incidents_open_key"),
    Index("ix_incidents_model_created", "model", "created_at"),
)

incident_alerts = Table(
    "incident_alerts", metadata,
    Column("id", Integer, primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"),
           nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("rule", String(200)),
    Column("labels", Text, nullable=False),
    Column("annotations", Text, nullable=False),
    Column("severity", String(20)),
    Column("state", String(20), nullable=False),  # firing | recovering | resolved
    Column("fired_at", Float, nullable=False),
    Column("resolved_at", Float),
    UniqueConstraint("incident_id", "fingerprint", name="uq_incident_alerts_key"),
    Index("ix_incident_alerts_fingerprint", "fingerprint", "state"),
)

incident_events = Table(
    "incident_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"),
           nullable=False),
    Column("at", Float, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("detail", Text, nullable=False),  # JSON
    Index("ix_incident_events_incident", "incident_id", "at"),
)

escalation_progress = Table(
    "escalation_progress", metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"),
           primary_key=True),
    Column("policy", Text, nullable=False),  # EscalationPolicy.to_dict(), fixed at opening
    Column("step", Integer, nullable=False),  # the next step to notify
    Column("cycle", Integer, nullable=False),  # how many repeats have started
    Column("since", Float, nullable=False),
    Column("next_at", Float),  # when the next step is due; NULL: finished or stopped
    Index("ix_escalation_progress_next", "next_at"),
)

kv_state = Table(
    "kv_state", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", Float, nullable=False),
)
__all__ += ["kv_state"]

# -- registry: a model version's artifact and metadata, aliases and their history --

__all__ += ["alias_events", "model_aliases", "model_artifacts"]

model_artifacts = Table(
    "model_artifacts", metadata,
    # one artifact per monitoring version: registry and monitoring share version ids
    Column("version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"),
           primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("format", String(20), nullable=False),  # skops | onnx | python | pickle | joblib
    Column("uri", Text, nullable=False),  # key relative to the artifact store's root
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("filename", String(300)),
    Column("entry_point", String(300)),  # module:function, for the python format
    Column("trusted_types", Text),  # JSON list: skops types beyond the defaults, as approved
    Column("trusted_by", String(200)),  # the admin who allowed code to run at load
    Column("meta", Text, nullable=False),  # JSON: metrics, params, tags, source commit, ...
    Column("registered_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_model_artifacts_model", "model_id", "version_id"),
)

model_aliases = Table(
    "model_aliases", metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version_id", Integer, ForeignKey("model_versions.id", ondelete="CASCADE"),
           nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(200), nullable=False),
)

alias_events = Table(
    "alias_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), nullable=False),
    Column("alias", String(100), nullable=False),
    Column("from_version_id", Integer),  # NULL: the alias was new
    Column("to_version_id", Integer),  # NULL: the alias was removed
    Column("kind", String(20), nullable=False),  # set | promote | rollback | delete | import
    Column("actor", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", Float, nullable=False),
    Index("ix_alias_events_alias", "model_id", "alias", "id"),
)

# -- notifications: the durable delivery queue (outbox) and every delivery attempt --

__all__ += ["notification_attempts", "notification_outbox"]

notification_outbox = Table(
    "notification_outbox", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("receiver", String(200), nullable=False),  # the receiver's name, never its config
    Column("notification_id", String(64), nullable=False),
    Column("notification", Text, nullable=False),  # Notification.to_dict() as JSON
    Column("queued_at", Float, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("state", String(10), nullable=False),  # pending | sent | failed
    Column("last_error", Text),  # scrubbed of receiver secrets
    Column("updated_at", Float, nullable=False),
    Index("ix_notification_outbox_state", "state", "id"),
)

notification_attempts = Table(
    "notification_attempts", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("outbox_id", BigInteger),  # NULL: nothing was queued (no such receiver)
    Column("receiver", String(200), nullable=False),
    Column("notification_id", String(64)),
    Column("at", Float, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status", Integer),  # HTTP or SMTP code when the far end answered
    Column("error", Text),  # scrubbed of receiver secrets
    Column("attempt", Integer, nullable=False),
    Column("final", Boolean, nullable=False),
    Column("retry_in", Float),
    Column("detail", Text),  # JSON: e.g. the group key of an undeliverable flush
    Index("ix_notification_attempts_at", "at"),
)

# -- serving gateway: one traffic policy per model (canary, shadow, A/B) --

__all__ += ["traffic_policies"]

traffic_policies = Table(
    "traffic_policies", metadata,
    Column("model_id", Integer, ForeignKey("models.id", ondelete="CASCADE"), primary_key=True),
    Column("mode", String(20), nullable=False),  # off | canary | shadow | ab
    Column("spec", Text, nullable=False),  # TrafficPolicy.to_dict() as JSON
    # bumped at every change: gateways poll it (with the newest alias event id) to reload
    Column("revision", Integer, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("reason", Text),
)

# -- LLM events: the conversation of each event, stored per the model's privacy policy --

__all__ += ["llm_events", "llm_feedback"]

llm_events = Table(
    "llm_events", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("request_id", String(200), nullable=False),
    Column("version", String(200)),
    Column("ts", Float, nullable=False),
    Column("received_at", Float, nullable=False),
    Column("session_id", String(200)),
    Column("privacy", String(10), nullable=False),  # store | redact | hash: applied before
    Column("input", Text),  # JSON messages after the privacy policy; NULL: withheld
    Column("output", Text),
    Column("context", Text),  # JSON list of passages
    Column("withheld", Text),  # why the texts are NULL
    Column("findings", Text, nullable=False),  # JSON: spans point into the stored texts
    Column("categories", Text, nullable=False),  # ",self_harm,email," for filtering
    Column("flagged", Boolean, nullable=False),
    Column("tags", Text, nullable=False),  # JSON object
    Column("detail", Text, nullable=False),  # JSON: provider, model, tokens, cost, flags
    UniqueConstraint("model_id", "request_id", name="uq_llm_events_model_request"),
    Index("ix_llm_events_flagged", "model_id", "flagged", "ts"),
)

llm_feedback = Table(
    "llm_feedback", metadata,
    Column("model_id", Integer, primary_key=True),
    Column("request_id", String(200), primary_key=True),
    Column("score", Float, nullable=False),
    Column("comment", Text),  # after the privacy policy; NULL: none, or withheld
    Column("received_at", Float, nullable=False),
)

# -- continuous training: a pipeline per model and its runs (training/) --

__all__ += ["training_pipelines", "training_runs"]

training_pipelines = Table(
    "training_pipelines", metadata,
    Column("model_id", Integer, primary_key=True),
    Column("spec", Text, nullable=False),  # JSON of training.spec.PipelineSpec
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(200)),
    Column("state", Text),  # JSON: trigger bookkeeping (last cron slot, labels counted)
)

training_runs = Table(
    "training_runs", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("model_id", Integer, nullable=False),
    Column("state", String(20), nullable=False),  # queued running succeeded failed blocked...
    Column("trigger", String(20), nullable=False),  # schedule | alert | labels | manual
    Column("trigger_detail", Text, nullable=False),  # JSON
    Column("dedupe_key", String(300)),  # one queued/running run per key
    Column("spec", Text, nullable=False),  # the pipeline as it was when the run was queued
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("heartbeat_at", Float),
    Column("holder", String(200)),  # the process running it
    Column("cancel_requested", Boolean, nullable=False),
    Column("reason", Text),
    Column("data", Text, nullable=False),  # JSON lineage: hash, rows, window, quarantined
    Column("gates", Text, nullable=False),  # JSON list of GateResult dicts
    Column("result", Text, nullable=False),  # JSON: metrics, seconds, peak memory, artifact
    Column("version", String(200)),  # the registered candidate
    Column("run_dir", Text),
    Index("ix_training_runs_model", "model_id", "created_at"),
    Index("ix_training_runs_state", "state"),
    sqlite_autoincrement=True,
)
