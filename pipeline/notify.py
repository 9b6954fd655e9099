"""Notifications to a Slack-compatible incoming webhook (`SLACK_WEBHOOK_URL`): `{"text": ...}`.

A notification must never turn a good run into a failed one, nor hide a failure: errors of the
webhook itself are logged as warnings and otherwise ignored. The text is redacted like logs.
"""

from __future__ import annotations

import logging
import time

import requests

from core.logs import event, redact

log = logging.getLogger(__name__)

ATTEMPTS = 3


def notify(webhook_url: str | None, text: str, timeout: float = 10.0) -> bool:
    """Post `text`; True when the webhook accepted it, False when it is unset or failed. A
    failure is one warning for the whole notification (each attempt is a debug line), so an
    operator sees one line per message lost, not one per retry."""
    if not webhook_url:
        return False
    reasons: list[str] = []
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = requests.post(webhook_url, json={"text": redact(text)}, timeout=timeout)
            if response.status_code < 300:
                return True
            reasons.append(f"HTTP {response.status_code}")
            if response.status_code < 500 and response.status_code != 429:
                break  # a bad URL or payload will not get better by retrying
        except requests.RequestException as exc:
            reasons.append(type(exc).__name__)
        event(log, f"notification attempt {attempt} failed: {reasons[-1]}", logging.DEBUG)
        if attempt < ATTEMPTS:
            time.sleep(0.5 * attempt)
    event(log, f"notification not delivered after {len(reasons)} attempt(s) ({', '.join(reasons)}); "
               "the run's own result is unaffected", logging.WARNING)
    return False
