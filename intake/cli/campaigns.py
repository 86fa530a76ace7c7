"""``intake campaigns``: list campaigns, and confirm, split, merge, name or recompute them."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .root import usage_errors as _errors

__all__ = ["campaigns_group"]


def _app(ctx: click.Context) -> Any:
    return ctx.find_root().obj.app


@click.group("campaigns", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per campaign, per line.")
@click.option("--members/--no-members", default=True, show_default=True, help="List members.")
@click.pass_context
def campaigns_group(ctx: click.Context, as_json: bool, members: bool) -> None:
    """Campaigns: the same letter sent by many people, read once.

    Without a subcommand, lists every campaign (largest first) with the honest counts,
    the template's first lines and the members, each with its role: template, copy,
    copy_with_additions (its own words are shown) or partial (for staff to confirm).
    """
    if ctx.invoked_subcommand is not None:
        return
    app = _app(ctx)
    from store.campaigns import honest_counts

    from ..staff import campaigns as staff

    with _errors(), app.sessions() as session:
        listing = staff.list_campaigns(session)
        counts = honest_counts(session)
    out = sys.stdout
    if as_json:
        for campaign in listing:
            record = campaign.as_json()
            if not members:
                record.pop("members")
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    out.write(f"Counted: {counts.line()}\n")
    if not listing:
        out.write("No campaigns found (run `intake campaigns recompute` after an import).\n")
    for c in listing:
        title = f"Campaign {c.id}" + (f": {c.name}" if c.name else "")
        roles = ", ".join(f"{role} {n}" for role, n in sorted(c.roles.items()))
        state = "confirmed" if c.confirmed else "not confirmed"
        out.write(f"\n{title} ({c.size} responses, {state}; {roles})\n")
        out.write(f"  Template {c.template_reference or '-'}:\n")
        for line in c.template_lines:
            out.write(f"    | {line}\n")
        if not members:
            continue
        for m in c.members:
            out.write(
                f"  {m.reference or '-':<12} {m.role:<20} {m.containment:>5.0%}  "
                f"{(m.sender or '-'):<32.32} {m.received_uk or '-'}\n"
            )
            if m.additions:
                first = m.additions.strip().splitlines()[0]
                out.write(f"      own text: {first[:120]}\n")


@campaigns_group.command("confirm")
@click.argument("campaign_id", type=int)
@click.pass_context
def confirm_cmd(ctx: click.Context, campaign_id: int) -> None:
    """Confirm a campaign as checked: its members stay in it, partials are counted."""
    app = _app(ctx)
    from ..staff import campaigns as staff

    with _errors(), app.sessions() as session:
        count = staff.confirm(session, campaign_id, app.now())
        session.commit()
    click.echo(f"campaign {campaign_id} confirmed with {count} responses")


@campaigns_group.command("name")
@click.argument("campaign_id", type=int)
@click.argument("name")
@click.pass_context
def name_cmd(ctx: click.Context, campaign_id: int, name: str) -> None:
    """Give a campaign a name (e.g. the organisation behind it)."""
    app = _app(ctx)
    from ..staff import campaigns as staff

    with _errors(), app.sessions() as session:
        staff.name(session, campaign_id, name, app.now())
        session.commit()
    click.echo(f"campaign {campaign_id} is now named {name!r}")


@campaigns_group.command("merge")
@click.argument("campaign_id", type=int)
@click.argument("others", type=int, nargs=-1, required=True)
@click.pass_context
def merge_cmd(ctx: click.Context, campaign_id: int, others: tuple[int, ...]) -> None:
    """Merge the campaigns OTHERS into CAMPAIGN_ID (kept through every recompute)."""
    app = _app(ctx)
    from ..staff import campaigns as staff

    with _errors(), app.sessions() as session:
        size = staff.merge(session, app.settings.campaigns, campaign_id, others, app.now())
        session.commit()
    click.echo(f"campaign {campaign_id} now has {size} responses")


@campaigns_group.command("split")
@click.argument("campaign_id", type=int)
@click.argument("references", nargs=-1, required=True)
@click.option(
    "--none", "alone", is_flag=True, help="Take them out of campaigns altogether (not copies)."
)
@click.pass_context
def split_cmd(
    ctx: click.Context, campaign_id: int, references: tuple[str, ...], alone: bool
) -> None:
    """Move the responses REFERENCES out of a campaign, into a new campaign of their own."""
    app = _app(ctx)
    from ..staff import campaigns as staff

    with _errors(), app.sessions() as session:
        new_id = staff.split(
            session, app.settings.campaigns, campaign_id, references, app.now(), alone=alone
        )
        session.commit()
    where = f"new campaign {new_id}" if new_id is not None else "no campaign"
    click.echo(f"{len(references)} response(s) moved from campaign {campaign_id} to {where}")


@campaigns_group.command("recompute")
@click.pass_context
def recompute_cmd(ctx: click.Context) -> None:
    """Find campaigns and versions again over every stored response (keeps staff decisions)."""
    app = _app(ctx)
    from store import responses
    from store.campaigns import honest_counts

    from ..stages.cluster import recompute_all

    with _errors(), app.sessions() as session:
        total = len(responses.response_rows(session))
        with click.progressbar(
            length=total, label="Comparing responses", file=sys.stderr, show_pos=True
        ) as bar:
            summary = recompute_all(session, app.settings.campaigns, app.now(), bar.update)
        session.commit()
        counts = honest_counts(session)
    click.echo(
        f"{summary.responses} responses: {summary.campaigns} campaign(s) with "
        f"{summary.members} members, {summary.versions} superseded version(s)"
    )
    click.echo(f"Counted: {counts.line()}")
