#!/usr/bin/env python3
"""Runs a seed-style `process(message, consumer_name)` as a runner command hook.

    "process": {"command": {"command": ["python3", "runner_adapter.py", "worker"]}}

runner writes one JSON line per request on stdin: a record ({"topic", "partition", "offset",
"key", "headers", "type", "value"}), or an array of records when batch_size > 1. The adapter
calls process(record["value"], consumer_name) for each and writes one JSON line back: the
returned message (None drops it, a list sends several); an array of those for a batch.
"""
import importlib
import json
import os
import sys

module = importlib.import_module(sys.argv[1] if len(sys.argv) > 1 else "worker")
consumer_name = os.environ.get("RUNNER_CONSUMER_NAME", "runner")

for line in sys.stdin:
    request = json.loads(line)
    if isinstance(request, list):
        reply = [module.process(record["value"], consumer_name) for record in request]
    else:
        reply = module.process(request["value"], consumer_name)
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
