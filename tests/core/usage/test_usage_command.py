"""``homefire usage``: totals, breakdowns, cost avoided per baseline, electricity, net, break-even."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from app.cli import run
from app.core.storage.paths import AppPaths
from app.core.usage.ledger import UsageLedger
from app.core.usage.preferences import UsagePreferences, UsagePreferencesStore

TODAY = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
DAY_A = TODAY - timedelta(days=3)
DAY_B = TODAY - timedelta(days=2)


@pytest.fixture(autouse=True)
def utc_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Days are local: pin the local zone so the dates below are this machine's dates."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def filled() -> None:
    moments = iter([DAY_A, DAY_A + timedelta(hours=1), DAY_B])
    current = [DAY_A]

    def now() -> datetime:
        return current[0]

    ledger = UsageLedger(AppPaths.from_env().database_file, now=now)
    try:
        for source, client, model, prompt, cached, completion, joules in (
            ("api", "Continue", "gemma", 600_000, 100_000, 30_000, Decimal(3600)),
            ("api", "openai-python", "qwen", 400_000, 100_000, 20_000, Decimal(3600)),
            ("chat", None, "gemma", 234_567, 34_567, 39_012, None),
        ):
            current[0] = next(moments)
            gid = ledger.start(
                source=source,
                client=client,
                model=model,
                prompt_tokens=prompt,
                cached_prompt_tokens=cached,
            )
            ledger.finish(
                gid, completion_tokens=completion, finish_reason="stop", energy_joules=joules
            )
    finally:
        ledger.close()


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert run(["usage", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.usefixtures("filled")
def test_json_report_of_everything(capsys: pytest.CaptureFixture[str]) -> None:
    report = _json(
        capsys,
        "--baseline",
        "gpt-4.1",
        "gemini-2.5-flash",
        "--kwh-price",
        "0.30",
        "--hardware-cost",
        "2000",
    )

    assert report["schema"] == 1
    assert report["currency"] == "USD"
    assert report["range"] == {"since": None, "until": None}
    assert report["totals"] == {
        "generations": 3,
        "in_progress": 0,
        "prompt_tokens": 1_234_567,
        "cached_prompt_tokens": 234_567,
        "completion_tokens": 89_012,
        "total_tokens": 1_323_579,
        "energy_measured_generations": 2,
        "energy_joules": "7200.000",
    }
    assert [b["id"] for b in report["baselines"]] == ["gpt-4.1", "gemini-2.5-flash"]
    gpt, flash = report["savings"]
    assert Decimal(gpt["cost_avoided"]) == Decimal("2.8293795")
    assert Decimal(gpt["measured_cost_avoided"]) == Decimal("2.1")
    assert Decimal(gpt["net_measured"]) == Decimal("2.0994")
    assert gpt["net"] is None  # the chat reply's energy was not measured
    assert Decimal(flash["cost_avoided"]) == Decimal("0.540122525")

    electricity = report["electricity"]
    assert electricity["status"] == "partly measured"
    assert Decimal(electricity["measured_kwh"]) == Decimal("0.002")
    assert Decimal(electricity["cost"]) == Decimal("0.0006")
    assert (electricity["measured_generations"], electricity["unmeasured_generations"]) == (2, 1)

    assert [(d["date"], d["generations"]) for d in report["by_day"]] == [
        (DAY_A.date().isoformat(), 2),
        (DAY_B.date().isoformat(), 1),
    ]
    assert [(c["source"], c["client"], c["total_tokens"]) for c in report["by_client"]] == [
        ("api", "Continue", 630_000),
        ("api", "openai-python", 420_000),
        ("chat", "", 273_579),
    ]
    assert [(m["model"], m["generations"]) for m in report["by_model"]] == [
        ("gemma", 2),
        ("qwen", 1),
    ]
    by_model_cost = sum(Decimal(m["cost_avoided"]["gpt-4.1"]) for m in report["by_model"])
    assert by_model_cost == Decimal("2.8293795")

    break_even = report["break_even"]
    assert break_even["window_days"] == 30
    assert break_even["monthly"]["total_tokens"] == 1_323_579
    gpt_be = break_even["baselines"][0]
    assert gpt_be["months_gross"] == "706.9"  # 2000 / 2.8293795, rounded up
    assert (gpt_be["monthly_net"], gpt_be["months_net"]) == (None, None)


@pytest.mark.usefixtures("filled")
def test_since_and_until_are_whole_local_days(capsys: pytest.CaptureFixture[str]) -> None:
    day_b = DAY_B.date().isoformat()
    assert _json(capsys, "--since", day_b)["totals"]["generations"] == 1
    assert _json(capsys, "--until", DAY_A.date().isoformat())["totals"]["generations"] == 2
    only_b = _json(capsys, "--since", day_b, "--until", day_b)
    assert only_b["totals"]["prompt_tokens"] == 234_567
    assert only_b["electricity"]["status"] == "not measured"
    assert only_b["electricity"]["measured_kwh"] is None
    assert only_b["savings"][0]["net_measured"] is None


@pytest.mark.usefixtures("filled")
def test_text_report_shows_cost_electricity_and_net(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["usage", "--baseline", "gpt-4.1", "--kwh-price", "0.30"]) == 0
    out = capsys.readouterr().out
    assert "completion tokens        89,012" in out
    assert "GPT-4.1" in out
    assert "$2.83" in out
    assert "Electricity: 0.002 kWh measured for 2 of 3 generations, $0.000600 at $0.30/kWh" in out
    assert "$2.10 on the measured share; not measured for $0.7294 of cost avoided" in out
    assert "api: Continue" in out
    assert "hardware cost not set" in out


@pytest.mark.usefixtures("filled")
def test_your_saved_baselines_and_prices_are_used(capsys: pytest.CaptureFixture[str]) -> None:
    UsagePreferencesStore.at(AppPaths.from_env()).save(
        UsagePreferences(
            baselines=["gpt-4o"],
            electricity_price_per_kwh=Decimal("0.5"),
            hardware_cost=Decimal(1000),
        )
    )
    report = _json(capsys)
    assert [b["id"] for b in report["baselines"]] == ["gpt-4o"]
    assert report["electricity"]["price_per_kwh"] == "0.5"
    assert report["break_even"]["hardware_cost"] == "1000"


def test_an_empty_ledger_reports_zeros(capsys: pytest.CaptureFixture[str]) -> None:
    report = _json(capsys)
    assert report["totals"]["generations"] == 0
    assert report["by_day"] == []
    assert all(Decimal(s["cost_avoided"]) == 0 for s in report["savings"])
    assert run(["usage"]) == 0
    assert "nothing generated" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--since", "2026-13-01"], "--since '2026-13-01' is not a date; use YYYY-MM-DD"),
        (["--until", "yesterday"], "--until 'yesterday' is not a date"),
        (["--since", "2026-11-20", "--until", "2026-11-10"], "is after --until"),
        (["--kwh-price", "cheap"], "--kwh-price 'cheap' is not a number"),
        (["--hardware-cost", "-5"], "must be a positive number"),
        (["--baseline", "gpt-9"], "no reference price called 'gpt-9'"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["usage", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1
