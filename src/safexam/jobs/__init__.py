"""Async work: the job ledger and the enqueue function every domain uses."""

from safexam.jobs.service import enqueue

__all__ = ["enqueue"]
