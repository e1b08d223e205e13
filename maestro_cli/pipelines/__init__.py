"""Pipelines: several stages run together through the registry (above the domain packages and the metrics)."""
