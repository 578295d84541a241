"""``homefire usage``: tokens counted, the API cost they avoided, electricity, net, break-even."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

from app.core.errors import ConfigError
from app.core.services import AppServices
from app.core.usage.counts import UsageTotals
from app.core.usage.dollars import format_dollars
from app.core.usage.report import UsageReport, build_report, local_day_start, to_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "usage",
        help="tokens counted and the API cost they avoided",
        description=(
            "Totals and breakdowns of every generation (chat and endpoint), what they would "
            "have cost on reference APIs, the electricity measured, and the net. Days are in "
            "this machine's local time."
        ),
    )
    parser.add_argument("--since", metavar="DATE", help="from this day on (YYYY-MM-DD)")
    parser.add_argument("--until", metavar="DATE", help="up to and including this day")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--baseline",
        metavar="ID",
        nargs="+",
        action="extend",
        help="reference API(s) to price against (default: your chosen baselines)",
    )
    parser.add_argument(
        "--kwh-price", metavar="PRICE", help="electricity price per kWh (default: your setting)"
    )
    parser.add_argument(
        "--hardware-cost",
        metavar="AMOUNT",
        help="what the machine cost, for the break-even line (default: your setting)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    since = _day_start(args.since, "--since")
    until = _day_start(args.until, "--until", next_day=True)
    if since is not None and until is not None and since >= until:
        raise ConfigError(f"--since {args.since} is after --until {args.until}")
    kwh_price = _money(args.kwh_price, "--kwh-price")
    hardware_cost = _money(args.hardware_cost, "--hardware-cost")

    with AppServices.create() as services:
        preferences = services.usage_preferences.load()
        table = preferences.price_table()
        report = build_report(
            services.ledger,
            table,
            preferences.baselines_in(table, args.baseline or ()),
            since=since,
            until=until,
            now=datetime.now().astimezone(),
            price_per_kwh=preferences.electricity_price_per_kwh if kwh_price is None else kwh_price,
            hardware_cost=preferences.hardware_cost if hardware_cost is None else hardware_cost,
        )
    if args.json:
        sys.stdout.write(json.dumps(to_json(report), indent=2) + "\n")
    else:
        sys.stdout.write(format_report(report, args.since, args.until) + "\n")
    return 0


def _day_start(text: str | None, option: str, *, next_day: bool = False) -> datetime | None:
    """Local midnight starting the day (or the day after, for an inclusive --until)."""
    if text is None:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a date; use YYYY-MM-DD") from None
    if next_day:
        day += timedelta(days=1)
    return local_day_start(day)


def _money(text: str | None, option: str) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{option} {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{option} must be a positive number, not {text!r}")
    return value


# -- text output ---------------------------------------------------------------------------


def format_report(report: UsageReport, since: str | None, until: str | None) -> str:
    lines = [_heading(since, until), *_totals_lines(report.totals), ""]
    lines += _savings_lines(report)
    lines += _breakdown("By day", {d.isoformat(): t for d, t in report.by_day.items()}, report)
    lines += _breakdown(
        "By client",
        {
            (k.client or "chat") if k.source == "chat" else f"api: {k.client}": t
            for k, t in report.by_client.items()
        },
        report,
    )
    lines += _breakdown("By model", dict(report.by_model), report)
    lines += _break_even_lines(report)
    return "\n".join(lines).rstrip()


def _heading(since: str | None, until: str | None) -> str:
    if since is None and until is None:
        return "Usage, all time"
    return f"Usage from {since or 'the start'} to {until or 'now'} (local time)"


def _totals_lines(t: UsageTotals) -> list[str]:
    running = f" ({t.in_progress} in progress)" if t.in_progress else ""
    return [
        f"  generations        {t.generations:>12,}{running}",
        f"  prompt tokens      {t.tokens.prompt:>12,} (cached {t.tokens.cached_prompt:,})",
        f"  completion tokens  {t.tokens.completion:>12,}",
        f"  total tokens       {t.tokens.total:>12,}",
    ]


def _savings_lines(report: UsageReport) -> list[str]:
    e = report.electricity
    lines = [
        f"Cost avoided at API list prices ({report.currency}; "
        f"price table as of {report.prices_as_of.isoformat()})"
    ]
    for s in report.savings:
        price = s.price
        dated = f"prices of {price.as_of.isoformat()}" if price.as_of else "undated prices"
        origin = {"edited": ", your edit", "user": ", your entry"}.get(price.origin, "")
        lines.append(f"  {price.name:<22} {format_dollars(s.cost_avoided):>12}  ({dated}{origin})")
    lines.append("")
    if report.totals.generations == 0:
        lines.append("Electricity: nothing generated in this range")
    elif e.measured_kwh is None:
        lines.append("Electricity: not measured (no energy meter readable on this machine)")
    else:
        share = (
            ""
            if e.status == "measured"
            else f" for {e.measured_generations} of "
            f"{e.measured_generations + e.unmeasured_generations} generations"
        )
        cost = (
            "set a price per kWh (--kwh-price) for its cost"
            if e.cost is None
            else f"{format_dollars(e.cost)} at ${e.price_per_kwh}/kWh"
        )
        lines.append(f"Electricity: {e.measured_kwh.normalize():f} kWh measured{share}, {cost}")
    lines.append("Net savings (cost avoided − electricity)")
    for s in report.savings:
        lines.append(
            f"  {s.price.name:<22} {_net_text(s.net_measured, s.unmeasured_cost_avoided, e.status)}"
        )
    lines.append("")
    return lines


def _net_text(net_measured: Decimal | None, unmeasured: Decimal, status: str) -> str:
    if status == "not measured":
        return "not measured"
    if net_measured is None:
        return "needs a price per kWh (--kwh-price)"
    if status == "measured":
        return format_dollars(net_measured)
    return f"{format_dollars(net_measured)} on the measured share; not measured for {format_dollars(unmeasured)} of cost avoided"


def _breakdown(title: str, groups: Mapping[str, UsageTotals], report: UsageReport) -> list[str]:
    if not groups:
        return []
    names = [p.name for p in report.baselines]
    width = max(len(title), *(len(k) for k in groups))
    header = f"  {'':<{width}} {'generations':>11} {'tokens':>12}" + "".join(
        f" {n:>18}" for n in names
    )
    lines = [f"{title}", header]
    for key, totals in groups.items():
        costs = report.cost_avoided(totals)
        lines.append(
            f"  {key:<{width}} {totals.generations:>11,} {totals.tokens.total:>12,}"
            + "".join(f" {format_dollars(costs[p.id]):>18}" for p in report.baselines)
        )
    lines.append("")
    return lines


def _break_even_lines(report: UsageReport) -> list[str]:
    lines = ["Break-even (hardware cost ÷ monthly savings; volume of the last 30 days)"]
    if report.hardware_cost is None:
        lines.append("  hardware cost not set (--hardware-cost AMOUNT)")
        return lines
    lines.append(
        f"  hardware {format_dollars(report.hardware_cost)}; last 30 days: "
        f"{report.monthly.tokens.total:,} tokens in {report.monthly.generations:,} generations"
    )
    for be in report.break_even:
        gross = "never" if be.months_gross is None else f"{be.months_gross} months"
        if be.monthly_net is None:
            net = "net not measured"
        else:
            net = "never" if be.months_net is None else f"{be.months_net} months"
            net = f"net {net}"
        lines.append(
            f"  {be.monthly.price.name:<22} {format_dollars(be.monthly.cost_avoided)}/month avoided: "
            f"{gross} ignoring electricity, {net}"
        )
    return lines
