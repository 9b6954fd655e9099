"""Twitch OAuth2 client credentials: one cached app token, refreshed before expiry or on a 401."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import requests

from core.errors import ApiError
from core.logs import event, register_secrets

log = logging.getLogger(__name__)

# Refresh this long before the announced expiry, so no request leaves with a dying token.
EXPIRY_SKEW_SECONDS = 60.0


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic() clock
    generation: int


class TwitchAuth:
    def __init__(self, token_url: str, client_id: str, client_secret: str, session: requests.Session,
                 timeout: float = 30.0) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._secret = client_secret
        self._session = session
        self._timeout = timeout
        self._lock = threading.Lock()
        self._token: _Token | None = None
        self.fetches = 0
        register_secrets([client_secret])

    def headers(self) -> tuple[dict[str, str], int]:
        """Request headers and the token generation they carry (for `invalidate`)."""
        token = self._current()
        return (
            {"Client-ID": self.client_id, "Authorization": f"Bearer {token.value}", "Accept": "application/json"},
            token.generation,
        )

    def invalidate(self, generation: int) -> None:
        """A 401 came back: drop that token unless another thread already replaced it."""
        with self._lock:
            if self._token is not None and self._token.generation == generation:
                self._token = None

    def _current(self) -> _Token:
        with self._lock:
            token = self._token
            if token is None or time.monotonic() >= token.expires_at:
                token = self._fetch(0 if token is None else token.generation)
                self._token = token
            return token

    def _fetch(self, last_generation: int) -> _Token:
        params = {"client_id": self.client_id, "client_secret": self._secret, "grant_type": "client_credentials"}
        try:
            response = self._session.post(self.token_url, params=params, timeout=self._timeout)
        except requests.RequestException as exc:
            raise ApiError(f"token endpoint TWITCH_TOKEN_URL unreachable: {type(exc).__name__}") from None
        if response.status_code in (400, 401, 403):
            raise ApiError(
                f"token endpoint refused the credentials (HTTP {response.status_code}): "
                "check IGDB_CLIENT_ID and IGDB_CLIENT_SECRET",
                response.status_code,
            )
        if response.status_code != 200:
            raise ApiError(f"token endpoint answered HTTP {response.status_code}", response.status_code)
        try:
            body = response.json()
            value = str(body["access_token"])
            lifetime = float(body.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError):
            raise ApiError("token endpoint returned an unreadable body") from None
        register_secrets([value])
        self.fetches += 1
        event(log, "obtained an IGDB access token", expires_in_s=int(lifetime))
        skew = min(EXPIRY_SKEW_SECONDS, lifetime / 10)
        return _Token(value, time.monotonic() + lifetime - skew, last_generation + 1)
