"""The PAPERMAIL_TREND_* settings: defaults, validation, and the parameters they make."""

import pytest

from papermail import config
from papermail.trending import TrendParams
from tests.config.refusal import refusal
from tests.conftest import settings_environ


def test_defaults_are_the_documented_parameters(tmp_path):
    settings = config.load_settings(settings_environ(tmp_path))
    assert TrendParams.from_settings(settings, "24h") == TrendParams()
    assert TrendParams.from_settings(settings, "7d") == TrendParams(window_hours=168)
    assert settings.trend_keep_runs == 24
    assert TrendParams().as_json() == {
        "window_hours": 24.0,
        "half_life_hours": 36.0,
        "volume_weight": 0.5,
        "weights": {
            "bluesky_likes": 0.4,
            "bluesky_reposts": 0.4,
            "citations": 0.5,
            "comments": 0.5,
            "github_stars": 0.5,
            "hn_comments": 0.25,
            "hn_points": 0.5,
            "upvotes": 1.0,
        },
        "max_age_days": 30.0,
    }


def test_settings_become_parameters(tmp_path):
    environ = settings_environ(
        tmp_path,
        trend_half_life_hours="72",
        trend_volume_weight="0",
        trend_weight_upvotes="2",
        trend_weight_github_stars="0",
        trend_weight_comments="0.25",
        trend_max_age_days="14",
    )
    params = TrendParams.from_settings(config.load_settings(environ), "7d")
    assert (params.window_hours, params.half_life_hours, params.volume_weight, params.max_age_days) == (
        168,
        72,
        0,
        14,
    )
    assert dict(params.weights) == {
        "upvotes": 2,
        "github_stars": 0,
        "comments": 0.25,
        "hn_points": 0.5,
        "hn_comments": 0.25,
        "bluesky_likes": 0.4,
        "bluesky_reposts": 0.4,
        "citations": 0.5,
    }
    assert params.metrics[:3] == ("upvotes", "hn_points", "hn_comments")  # weighted, in display order
    assert "github_stars" not in params.metrics and params.metrics[-1] == "comments"


def test_metrics_are_in_display_order_then_by_name():
    params = TrendParams(weights={"forks": 1, "comments": 1, "citations": 2, "upvotes": 1, "github_stars": 0})
    assert params.metrics == ("upvotes", "citations", "comments", "forks")


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TREND_WINDOW_HOURS", "24", "PAPERMAIL_TREND_WINDOW_HOURS: was removed: daily digests rank by 24"),
        ("TREND_HALF_LIFE_HOURS", "inf", "PAPERMAIL_TREND_HALF_LIFE_HOURS: must be a finite number"),
        ("TREND_VOLUME_WEIGHT", "1.5", "PAPERMAIL_TREND_VOLUME_WEIGHT: must be between 0 and 1"),
        ("TREND_WEIGHT_UPVOTES", "-1", "PAPERMAIL_TREND_WEIGHT_UPVOTES: must be zero (ignore the signal)"),
        ("TREND_WEIGHT_GITHUB_STARS", "nan", "PAPERMAIL_TREND_WEIGHT_GITHUB_STARS: must be a finite number"),
        ("TREND_WEIGHT_COMMENTS", "-0.5", "PAPERMAIL_TREND_WEIGHT_COMMENTS: must be zero"),
        ("TREND_MAX_AGE_DAYS", "-3", "PAPERMAIL_TREND_MAX_AGE_DAYS: must be a positive number"),
        ("TREND_KEEP_RUNS", "0", "PAPERMAIL_TREND_KEEP_RUNS: must be a positive whole number"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, variable, value, message):
    assert refusal(tmp_path, variable, value).startswith(message)
