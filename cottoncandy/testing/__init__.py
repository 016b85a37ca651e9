"""Test rigs shipped with the library: a local S3 endpoint for tests, the demo and benchmarks
(``s3server``; needs the ``server`` extra: moto), a fault proxy and misbehaving answers in front of
it (``faultproxy``, ``misbehave``), s3rver as a second S3 implementation (``s3rver``; Node.js), and
the store contract any backend's tests can run (``contract``; needs pytest)."""
