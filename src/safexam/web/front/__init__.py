"""The front door: the landing page for institutions, "Talk to us", and the installable app."""

from __future__ import annotations

from safexam.web.front.landing import FrontDoorController
from safexam.web.front.pwa import pwa_handlers

__all__ = ["FrontDoorController", "pwa_handlers"]
