"""An expense approval: a workflow that waits, durably, for a human decision.

``run`` executes exactly once per workflow key. It asks an approver for a decision and waits on
the durable promise ``decision``, for minutes or for weeks (the invocation suspends meanwhile;
nothing runs). The shared handlers ``approve`` and ``reject`` complete that promise, and
``status`` reads the state ``run`` keeps up to date. Run it with ``make run`` or
``undying dev examples/approval.py``, then:

    curl -X POST localhost:8080/Approval/exp-1/run/send -H 'content-type: application/json' \
         -d '{"title": "Conference ticket", "amount": 450}'
    curl -X POST localhost:8080/Approval/exp-1/status          # "pending"
    curl -X POST localhost:8080/Approval/exp-1/approve -H 'content-type: application/json' \
         -d '"Enjoy the talk"'                                 # or .../reject -d '"Too pricey"'
    curl localhost:8080/restate/workflow/Approval/exp-1/attach # the Decision
"""

from __future__ import annotations

from dataclasses import dataclass

import undying

approval = undying.Workflow("Approval")


@dataclass
class Expense:
    title: str
    amount: float


@dataclass
class Decision:
    approved: bool
    note: str


def ask_approver(expense_id: str, expense: Expense) -> None:
    print(f"Approval {expense_id}: please decide on {expense.title} ({expense.amount})", flush=True)


def pay_out(expense_id: str, expense: Expense) -> None:
    print(f"Approval {expense_id}: paid {expense.amount} for {expense.title}", flush=True)


@approval.main()
async def run(ctx: undying.WorkflowContext, expense: Expense) -> Decision:
    """Ask for approval, wait for the decision, pay out if approved."""
    expense_id = ctx.key()
    ctx.set("status", "pending")
    await ctx.run("ask approver", ask_approver, expense_id, expense)
    try:
        note = await ctx.promise("decision", str)  # resolved by approve, rejected by reject
    except undying.InvocationCancelled:
        ctx.set("status", "cancelled")
        raise
    except undying.TerminalError as rejection:
        ctx.set("status", "rejected")
        return Decision(approved=False, note=rejection.message)
    ctx.set("status", "approved")
    await ctx.run("pay out", pay_out, expense_id, expense)
    ctx.set("status", "paid")
    return Decision(approved=True, note=note)


@approval.handler()
async def approve(ctx: undying.WorkflowSharedContext, note: str) -> None:
    """Approve the expense (fails with 409 once a decision was made)."""
    await ctx.promise("decision", str).resolve(note)


@approval.handler()
async def reject(ctx: undying.WorkflowSharedContext, reason: str) -> None:
    """Reject the expense (fails with 409 once a decision was made)."""
    await ctx.promise("decision", str).reject(reason, code=403)


@approval.handler()
async def status(ctx: undying.WorkflowSharedContext) -> str:
    """``pending``, ``approved``, ``paid``, ``rejected`` or ``cancelled`` (``unknown`` before
    ``run`` started)."""
    return await ctx.get("status", str, default="unknown")


app = undying.app([approval])
