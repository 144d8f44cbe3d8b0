"""Alerting: rules, alert states, routing and notifications."""
