"""SafeExam: an open exam-and-grading platform."""

__version__ = "0.1.0"
