"""``crm profiles build|show|lookup`` and ``crm erase``: unified customers from the command line."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from crm_analytics.cli.common import (
    JsonOption,
    day_option,
    emit,
    err,
    handle_errors,
    out,
    render_rows,
    settings,
)
from crm_analytics.cli.render import render_profile_build
from crm_analytics.errors import InvalidInputError

app = typer.Typer(help="Unified customer profiles: build, show, look up.", no_args_is_help=True)


@app.command("build")
@handle_errors
def build(
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Match probability at which two records link.")
    ] = 0.9,
    truth: Annotated[
        Path | None, typer.Option(help="Demo truth folder: score the linkage against true identities.")
    ] = None,
    incremental: Annotated[
        bool,
        typer.Option(
            "--incremental",
            help="Re-link only customers whose records are new or changed since the last build, with "
            "the stored linkage model (a full build when there is none).",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Link customer records across sources, survive one profile per customer, log the linkage.
    Customers keep their ids across builds; merges are recorded in customer_merges."""
    from crm_analytics.jobs import profiles

    with err.status("linking customer records"):
        report = profiles.build(settings(), threshold, truth, incremental).as_dict()
    emit(report, as_json, render_profile_build)


@app.command("show")
@handle_errors
def show(
    customer_id: Annotated[str, typer.Argument(help="Unified customer id (U...).")],
    as_json: JsonOption = False,
) -> None:
    """One customer: surviving fields with their source, service facts, linked records, conflicts."""
    from crm_analytics.jobs import profiles

    emit(profiles.show(settings(), customer_id), as_json, _render_profile)


@app.command("lookup")
@handle_errors
def lookup(
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number, any format.")] = None,
    country: Annotated[
        str | None, typer.Option(help="ISO country (e.g. FR) a national phone number is written in.")
    ] = None,
    first_name: Annotated[str | None, typer.Option(help="First name.")] = None,
    last_name: Annotated[str | None, typer.Option(help="Last name.")] = None,
    birth_date: Annotated[date | None, day_option("Birth date.")] = None,
    postcode: Annotated[str | None, typer.Option(help="Postcode.")] = None,
    city: Annotated[str | None, typer.Option(help="City.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Find the unified customer from an e-mail, a phone, or a name plus another detail."""
    from crm_analytics.jobs import profiles

    given = {
        "email": email,
        "phone": phone,
        "first_name": first_name,
        "last_name": last_name,
        "birth_date": birth_date.isoformat() if birth_date else None,
        "postcode": postcode,
        "city": city,
    }
    details = {k: v for k, v in given.items() if v is not None}
    try:
        matches = profiles.lookup(settings(), details, country)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    emit({"matches": [m.__dict__ for m in matches]}, as_json, _render_matches)


@handle_errors
def erase(
    customer_id: Annotated[str, typer.Argument(help="Unified customer id (U...) or a source account id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a person everywhere (raw records, quarantine, profile, features, scores, serving store,
    access log, killed runs' leftovers), rewrite the files so no bytes of them remain, and suppress their
    source records so a later ingest drops them."""
    from crm_analytics.jobs import erase as erase_job

    if not yes and not typer.confirm(
        f"Erase customer {customer_id} everywhere? This cannot be undone", err=True
    ):
        raise typer.Exit(1)
    report = erase_job.erase(settings(), customer_id)
    emit(report, as_json, lambda r: render_rows("erased", [r.as_dict()]))
    if report.key_notice:
        err.print(f"note: {report.key_notice}", markup=False, highlight=False, soft_wrap=True)
    if report.serving_store_compacted is False:
        err.print(
            "note: a reader kept the serving store's write-ahead log busy; the erased rows' old pages "
            "leave it at its next checkpoint",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _render_matches(result: dict[str, Any]) -> None:
    if result["matches"]:
        render_rows("matches", result["matches"])
    else:
        out.print("no customer matches these details")


def _render_profile(profile: dict[str, Any]) -> None:
    render_rows("profile", [{"field": k, **v} for k, v in profile["fields"].items()])
    for part in ("service_facts", "records", "conflicts"):
        if profile[part]:
            render_rows(part.replace("_", " "), profile[part])
    render_rows("history", [profile["history"]])
