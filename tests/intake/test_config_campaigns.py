"""The [campaigns] section: defaults, values, and errors that name the key."""

from __future__ import annotations

import pytest

from intake.config import CampaignSettings
from intake.errors import ConfigError
from tests.conftest import make_settings


def test_defaults_and_values() -> None:
    assert make_settings("sqlite://").campaigns == CampaignSettings()
    settings = make_settings(
        "sqlite://", extra='[campaigns]\nmin_members = 3\npublic_mail_domains = ["uni.ac.uk"]'
    )
    assert settings.campaigns.min_members == 3
    assert settings.campaigns.public_mail_domains == ("uni.ac.uk",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("shingles = 4", "campaigns.shingles: unknown key"),
        ("copy_containment = 1.5", "campaigns.copy_containment: expected a number between"),
        ("min_members = 1", "campaigns.min_members: expected a number at least 2"),
        ('enabled = "yes"', "campaigns.enabled: expected true or false"),
    ],
)
def test_errors_name_the_key(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings("sqlite://", extra=f"[campaigns]\n{body}")
