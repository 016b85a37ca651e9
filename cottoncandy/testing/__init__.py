"""A local S3 endpoint for tests, the demo and benchmarks (needs the ``server`` extra: moto)."""
