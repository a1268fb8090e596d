"""Settings read from SAFEXAM_* variables: good values typed, malformed ones named at start-up."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from safexam.coding.languages import language_names
from safexam.core.languages import LANGUAGE_NAMES
from safexam.core.settings import Settings, SettingsError, load_settings

KEY = {"SAFEXAM_SECRET_KEY": "a-stable-key-shared-by-api-and-workers"}


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """Parsing touches neither PostgreSQL nor Redis (overrides the database cleanup)."""


def test_judge0_defaults_mean_polling_with_the_built_in_language_ids() -> None:
    settings = load_settings({})
    assert settings.judge0_callback_url is None
    assert settings.judge0_callback_wait_seconds == 60
    assert settings.judge0_language_ids == ()
    assert settings.judge0_language_map == {}
    # An empty variable is the same as an unset one: polling mode.
    assert load_settings({"SAFEXAM_JUDGE0_CALLBACK_URL": ""}).judge0_callback_url is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://api:8000", "http://api:8000"),
        ("https://exam.college.edu/", "https://exam.college.edu"),
        (" https://exam.college.edu/safexam/ ", "https://exam.college.edu/safexam"),
    ],
)
def test_callback_url_is_an_absolute_base_url(raw: str, expected: str) -> None:
    settings = load_settings({**KEY, "SAFEXAM_JUDGE0_CALLBACK_URL": raw})
    assert settings.judge0_callback_url == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("api:8000", "absolute http"),
        ("/api/v1", "absolute http"),
        ("ftp://api", "absolute http"),
        ("http://", "absolute http"),
        ("http://api:8000/?x=1", "without a query"),
        ("http://api:8000/#top", "without a query"),
        ("http://api:99999", "invalid port"),
    ],
)
def test_malformed_callback_url_stops_start_up_naming_the_variable(raw: str, problem: str) -> None:
    with pytest.raises(SettingsError, match="SAFEXAM_JUDGE0_CALLBACK_URL") as caught:
        load_settings({**KEY, "SAFEXAM_JUDGE0_CALLBACK_URL": raw})
    assert problem in str(caught.value)


def test_callback_mode_needs_a_secret_key_shared_by_api_and_workers() -> None:
    """Workers sign callback URLs and the API verifies them: a per-process key cannot work."""
    with pytest.raises(SettingsError, match="SAFEXAM_SECRET_KEY is required"):
        load_settings({"SAFEXAM_JUDGE0_CALLBACK_URL": "http://api:8000"})


def test_callback_wait_is_a_positive_integer() -> None:
    settings = load_settings({"SAFEXAM_JUDGE0_CALLBACK_WAIT_SECONDS": "15"})
    assert settings.judge0_callback_wait_seconds == 15
    for raw in ("0", "-5", "soon", "1.5"):
        with pytest.raises(SettingsError, match="SAFEXAM_JUDGE0_CALLBACK_WAIT_SECONDS"):
            load_settings({"SAFEXAM_JUDGE0_CALLBACK_WAIT_SECONDS": raw})


def test_sandbox_warm_is_a_small_count() -> None:
    assert load_settings({}).sandbox_warm == 2
    assert load_settings({"SAFEXAM_SANDBOX_WARM": "0"}).sandbox_warm == 0
    for raw in ("-1", "33", "many"):
        with pytest.raises(SettingsError, match="SAFEXAM_SANDBOX_WARM"):
            load_settings({"SAFEXAM_SANDBOX_WARM": raw})


def test_prewarm_and_retention_settings_are_checked() -> None:
    settings = load_settings({"SAFEXAM_PREWARM_MINUTES": "20", "SAFEXAM_JOB_RETENTION_DAYS": "0"})
    assert settings.prewarm_minutes == 20 and settings.prewarm_students_per_judge == 40
    assert settings.job_retention_days == 0 and settings.integrity_retention_days == 365
    for name, raw in (
        ("SAFEXAM_PREWARM_MINUTES", "0"),
        ("SAFEXAM_PREWARM_STUDENTS_PER_JUDGE", "-3"),
        ("SAFEXAM_JOB_RETENTION_DAYS", "-1"),
        ("SAFEXAM_INTEGRITY_RETENTION_DAYS", "a year"),
    ):
        with pytest.raises(SettingsError, match=name):
            load_settings({name: raw})


def test_language_id_map_parses_name_equals_id_pairs() -> None:
    settings = load_settings(
        {"SAFEXAM_JUDGE0_LANGUAGE_IDS": "python=92, c=75,CPP=76 ,java=91,javascript=93,"}
    )
    assert settings.judge0_language_map == {
        "python": 92,
        "c": 75,
        "cpp": 76,
        "java": 91,
        "javascript": 93,
    }
    partial = load_settings({"SAFEXAM_JUDGE0_LANGUAGE_IDS": "python=71"})
    assert partial.judge0_language_map == {"python": 71}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("ruby=72", "unknown language 'ruby'"),
        ("python=0", "positive integer"),
        ("python=-71", "positive integer"),
        ("python=seventy", "positive integer"),
        ("python=7.1", "positive integer"),
        ("python=", "positive integer"),
        ("python", "must look like python=71"),
        ("=71", "must look like python=71"),
        ("python=71,python=92", "twice"),
        ('{"python": 71}', "must look like python=71"),
    ],
)
def test_malformed_language_id_map_stops_start_up_naming_the_variable(
    raw: str, problem: str
) -> None:
    with pytest.raises(SettingsError, match="SAFEXAM_JUDGE0_LANGUAGE_IDS") as caught:
        load_settings({"SAFEXAM_JUDGE0_LANGUAGE_IDS": raw})
    assert problem in str(caught.value)


def test_settings_know_the_languages_the_runners_describe() -> None:
    """Settings check names against core's list; the runners describe each language."""
    assert language_names() == LANGUAGE_NAMES


def test_judge0_runner_still_requires_its_url() -> None:
    with pytest.raises(SettingsError, match="SAFEXAM_JUDGE0_URL"):
        load_settings({"SAFEXAM_CODE_RUNNER": "judge0"})
    settings = load_settings(
        {
            **KEY,
            "SAFEXAM_CODE_RUNNER": "judge0",
            "SAFEXAM_JUDGE0_URL": "http://judge0:2358",
            "SAFEXAM_JUDGE0_CALLBACK_URL": "http://api:8000",
        }
    )
    assert (settings.code_runner, settings.judge0_callback_url) == ("judge0", "http://api:8000")


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [
        f"SAFEXAM_{field.name.upper()}"
        for field in msgspec.structs.fields(Settings)
        if f"`SAFEXAM_{field.name.upper()}`" not in readme
    ]
    assert missing == [], f"settings missing from the README's configuration table: {missing}"
