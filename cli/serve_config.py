"""What ``accum serve`` is told: the service's settings and their defaults, in one place
for the command's options and the service (importing this needs no FastAPI)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass
class ServeConfig:
    """What ``accum serve`` was told (JSON-able, so that worker processes can rebuild it)."""

    store: str
    db: str | None = None
    model: str | None = None  # None: the store's default (accum.classify.default_model)
    alpha: float | None = None
    token: str | None = None
    timeout: float = 30.0
    max_body_bytes: int = 8 * 2**20
    max_batch: int = 256
    max_generate_tokens: int = 1000
    check_seconds: float = 0.5
    started_at: float | None = None  # time.time() when the command started
    host: str = "127.0.0.1"  # the address accum serve binds to
    allowed_hosts: list[str] | None = None  # Host names answered (None: guard.default_hosts(host))
    head_timeout: float = 10.0  # seconds for a request head to arrive (protocol.GuardedHttpToolsProtocol)
    body_timeout: float = 30.0  # seconds for a request body to arrive after its head (guard.BodyLimit)

    def limits(self) -> dict:
        return {"max_body_bytes": self.max_body_bytes, "max_batch": self.max_batch,
                "max_generate_tokens": self.max_generate_tokens, "timeout_seconds": self.timeout}

    def public(self) -> dict:
        """The configuration without the token (for logs)."""
        return {k: v for k, v in asdict(self).items() if k != "token"}


def default(name: str):
    """The default of the setting ``name``, for a command-line option."""
    return next(f.default for f in fields(ServeConfig) if f.name == name)
