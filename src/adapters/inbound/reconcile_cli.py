"""``rwa-market reconcile``: run one reconciliation and print its drift table.

A progress bar (``rich``) follows the accounts as they are checked; the table lists every
drift in base units (``chain - ledger``). Exit status 0 without drift, 1 with drift (the
drift is also in the audit log as ``reconcile.drift``).
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from core.tokens.reconcile import ReconcileReport, Reconciliation


async def run_reconcile(reconciliation: Reconciliation, console: Console | None = None) -> int:
    console = console or Console()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} accounts"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("reconciling", total=None)

        def step(symbol: str, checked: int) -> None:
            bar.update(task, advance=checked, description=f"checking {symbol}")

        report = await reconciliation.run(progress=step)
    console.print(drift_table(report) if report.drifts else summary(report))
    return 1 if report.drifts else 0


def summary(report: ReconcileReport) -> str:
    return (
        f"no drift: {report.tokens} tokens, {report.accounts} accounts checked "
        f"at {report.at.isoformat()}"
    )


def drift_table(report: ReconcileReport) -> Table:
    table = Table(
        title=f"Drift at {report.at.isoformat()} (base units; difference = chain - ledger)"
    )
    for column in ("Token", "Scope", "Owner", "Address", "Ledger", "Chain", "Difference"):
        table.add_column(
            column, justify="right" if column in ("Ledger", "Chain", "Difference") else "left"
        )
    for drift in report.drifts:
        table.add_row(
            drift.symbol,
            drift.scope,
            drift.owner,
            drift.address or "-",
            str(drift.ledger),
            str(drift.chain),
            f"{drift.difference:+d}",
        )
    return table
