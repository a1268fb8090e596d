"""Onboarding: institutions asking to use SafeExam, through the landing page's form."""
