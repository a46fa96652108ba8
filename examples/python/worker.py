"""Seed 002's worker.py: enrich a message by calling an external API.

Unchanged but for two details: the standard library's urllib instead of requests (nothing to
install), and the API's address from ANALYZE_URL instead of a constant.
"""
import json
import logging
import os
import urllib.request

logger = logging.getLogger(__name__)


def process(message, consumer_name):
    """Add the API's result to message["content"] when it has a "text" field."""
    if "text" in message["content"]:
        try:
            api_url = os.environ.get("ANALYZE_URL", "https://api.example.com/analyze")
            body = json.dumps({"text": message["content"]["text"]}).encode()
            request = urllib.request.Request(
                api_url, data=body, headers={"content-type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                api_result = json.load(response)
            message["content"].update(api_result)
            logger.debug(f"{consumer_name}: API call successful, added {list(api_result.keys())}")
        except OSError as e:
            logger.error(f"{consumer_name}: API call failed with exception {e}")
    return message
