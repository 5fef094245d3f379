"""Retry backoff: exponential with a cap and positive jitter, as Restate's default policy."""

from __future__ import annotations

import random

from undying.server.schema import RetryPolicy

__all__ = ["backoff_ms", "exhausted"]


def backoff_ms(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> int:
    """Delay before retry number ``attempt`` (1 = the first retry), jittered by 0-30 % up."""
    base = policy.initial_interval_ms * policy.factor ** max(0, attempt - 1)
    delay = min(base, policy.max_interval_ms)
    jitter = (rng or random).random() * 0.3
    return int(delay * (1 + jitter))


def exhausted(policy: RetryPolicy, attempts: int) -> bool:
    """Whether ``attempts`` attempts (all failed) use up the policy's maximum."""
    return policy.max_attempts is not None and attempts >= policy.max_attempts
