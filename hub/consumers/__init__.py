"""Consumers: glue between the broker adapter and the pure pipeline."""
