"""``crm profiles build|show|lookup`` and ``crm erase``: unified customers from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crm_analytics.cli_base import JsonOption, emit, err, out, render_rows, settings
from crm_analytics.settings import Settings

profiles_app = typer.Typer(help="Unified customer profiles: build, show, look up.", no_args_is_help=True)


@profiles_app.command("build")
def profiles_build(
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Match probability at which two records link.")
    ] = 0.9,
    truth: Annotated[
        Path | None, typer.Option(help="Demo truth folder: score the linkage against true identities.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Link customer records across sources, survive one profile per customer, log the linkage."""
    emit(build(settings(), threshold, truth), as_json, render_build)


def build(config: Settings, threshold: float, truth: Path | None) -> dict[str, Any]:
    """Run a profile build; bad input stops the command with the message."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.profiles.build import build_profiles

    with Warehouse(config.warehouse_url) as warehouse, err.status("linking customer records"):
        try:
            return build_profiles(warehouse, config, threshold=threshold, truth_dir=truth).as_dict()
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None


@profiles_app.command("show")
def profiles_show(
    customer_id: Annotated[str, typer.Argument(help="Unified customer id (U...).")],
    as_json: JsonOption = False,
) -> None:
    """One customer: surviving fields with their source, service facts, linked records, conflicts."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.profiles.show import customer_profile

    with Warehouse(settings().warehouse_url) as warehouse:
        try:
            profile = customer_profile(warehouse, customer_id)
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    emit(profile, as_json, _render_profile)


@profiles_app.command("lookup")
def profiles_lookup(
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone number, any format.")] = None,
    first_name: Annotated[str | None, typer.Option(help="First name.")] = None,
    last_name: Annotated[str | None, typer.Option(help="Last name.")] = None,
    birth_date: Annotated[str | None, typer.Option(help="Birth date, YYYY-MM-DD.")] = None,
    postcode: Annotated[str | None, typer.Option(help="Postcode.")] = None,
    city: Annotated[str | None, typer.Option(help="City.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Find the unified customer from an e-mail, a phone, or a name plus another detail."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.profiles.lookup import ProfileIndex

    given = {
        "email": email,
        "phone": phone,
        "first_name": first_name,
        "last_name": last_name,
        "birth_date": birth_date,
        "postcode": postcode,
        "city": city,
    }
    details = {k: v for k, v in given.items() if v is not None}
    with Warehouse(settings().warehouse_url) as warehouse:
        try:
            matches = ProfileIndex.load(warehouse).lookup(details)
        except ValueError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    result = {"matches": [m.__dict__ for m in matches]}
    emit(result, as_json, _render_matches)


def erase_command(
    customer_id: Annotated[str, typer.Argument(help="Unified customer id (U...) or a source account id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Erase a person everywhere (raw records, quarantine, profile, features, scores) and suppress their
    source records so a later ingest drops them."""
    from crm_analytics.ingest.warehouse import Warehouse
    from crm_analytics.profiles.erase import erase_customer
    from crm_analytics.serving.store import ServingStore

    if not yes and not typer.confirm(
        f"Erase customer {customer_id} everywhere? This cannot be undone", err=True
    ):
        raise typer.Exit(1)
    config = settings()
    with Warehouse(config.warehouse_url) as warehouse:
        unified = _unified_ids(warehouse, customer_id)
        try:
            report = erase_customer(warehouse, customer_id, config)
        except LookupError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from None
    served = ServingStore(config.serving_store_url).erase({customer_id, *unified})
    emit(report.as_dict() | {"serving_rows_deleted": served}, as_json, lambda r: render_rows("erased", [r]))


def _unified_ids(warehouse: Any, customer_id: str) -> set[str]:
    """The unified id(s) an id stands for: itself, or the customer a source account is linked to."""
    from crm_analytics.profiles.tables import LINKS

    if not warehouse.has_table(LINKS):
        return set()
    links = warehouse.ibis.table(LINKS)
    mine = links.filter((links.customer_id == customer_id) | (links.source_customer_id == customer_id))
    return set(mine.select("customer_id").execute()["customer_id"])


def _render_matches(result: dict[str, Any]) -> None:
    if result["matches"]:
        render_rows("matches", result["matches"])
    else:
        out.print("no customer matches these details")


def render_build(result: dict[str, Any]) -> None:
    quality = result["quality"] or {}
    out.print(
        f"{result['records']:,} source records -> {result['customers']:,} customers "
        f"(threshold {result['threshold']}); {result['conflicts']:,} conflicts for review"
    )
    render_rows("linked by", [result["linked_by"]])
    if quality:
        shown = {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in quality.items()}
        render_rows("pairwise quality against the truth", [shown])


def _render_profile(profile: dict[str, Any]) -> None:
    render_rows("profile", [{"field": k, **v} for k, v in profile["fields"].items()])
    for part in ("service_facts", "records", "conflicts"):
        if profile[part]:
            render_rows(part.replace("_", " "), profile[part])
    render_rows("history", [profile["history"]])
