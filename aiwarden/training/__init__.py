"""Continuous training: triggers, runs, gates, promotion (docs/training.md)."""
