"""Pure input rules: emails, passwords, names, notification preferences."""

from __future__ import annotations

import pytest

from server.domains.accounts import notifications
from server.domains.accounts.validation import check_password, clean_email, clean_name, collect
from server.errors import DomainError, DomainErrors, ErrorCode

F = ["input", "x"]


@pytest.mark.parametrize("email", ["a@b.co", "Ada.Lovelace+tag@Example.COM", "x@intranet", "  padded@example.com "])
def test_good_emails_are_kept_as_given(email):  # noqa: ANN001
    assert clean_email(email, F) == email.strip()


@pytest.mark.parametrize("email", ["", "ab", "plain", "a@", "@b.com", "a b@c.com", "a@b@c.com", "x" * 310 + "@example.com"])
def test_bad_emails(email):  # noqa: ANN001
    with pytest.raises(DomainError) as e:
        clean_email(email, F)
    assert e.value.code == ErrorCode.VALIDATION and e.value.field == F


@pytest.mark.parametrize("password,ok", [("x" * 7, False), ("x" * 8, True), ("x" * 255, True), ("x" * 256, False), ("", False)])
def test_password_lengths(password, ok):  # noqa: ANN001
    if ok:
        assert check_password(password, F) == password
    else:
        with pytest.raises(DomainError):
            check_password(password, F)


def test_names_blank_means_none_and_are_limited():
    assert clean_name("  ", F) is None and clean_name(None, F) is None and clean_name(" Ada ", F) == "Ada"
    with pytest.raises(DomainError):
        clean_name("x" * 256, F)


def test_collect_reports_every_failure():
    def bad(field: str):  # noqa: ANN202
        return lambda: check_password("short", ["input", field])

    with pytest.raises(DomainErrors) as e:
        collect(bad("a"), lambda: 1, bad("b"))
    assert [x.field for x in e.value.errors] == [["input", "a"], ["input", "b"]]
    assert collect(lambda: 1, lambda: 2) == [1, 2]


def test_effective_preferences_merge_overrides_with_defaults():
    prefs = notifications.effective({"weekly_digest": [], "incident_created": ["slack", "email"]})
    assert set(prefs) == set(notifications.EVENTS)
    assert prefs["weekly_digest"] == [] and prefs["incident_created"] == ["email", "slack"]
    assert prefs["anomaly_detected"] == list(notifications.DEFAULTS["anomaly_detected"])


def test_preference_changes_are_validated():
    assert notifications.validate_changes([("job_finished", ["slack", "email", "slack"])]) == {"job_finished": ["email", "slack"]}
    with pytest.raises(DomainErrors) as e:
        notifications.validate_changes([("nope", []), ("job_finished", ["pigeon"]), ("job_finished", [])])
    assert [x.field for x in e.value.errors] == [
        ["input", "preferences", "0", "event"], ["input", "preferences", "1", "channels"], ["input", "preferences", "2", "event"]]
