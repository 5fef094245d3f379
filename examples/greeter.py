"""The Greeter from the talk, written with the official Restate Python SDK.

Run it on undying with ``make run`` (or ``undying dev examples/greeter.py``), then:

    curl -X POST localhost:8080/Greeter/greet -H 'content-type: application/json' \
         -d '{"name": "Bob"}'

Every step is journaled: kill the server during the sleep, start it again, and the greeting
still arrives, with the notification sent exactly once.
"""

from __future__ import annotations

from datetime import timedelta

import restate

greeter = restate.Service("Greeter")


def send_notification(greeting_id: str, name: str) -> None:
    print(f"Notification {greeting_id}: hi {name}!", flush=True)


def send_reminder(greeting_id: str, name: str) -> None:
    print(f"Reminder {greeting_id}: don't forget {name}!", flush=True)


@greeter.handler()
async def greet(ctx: restate.Context, req: dict[str, str]) -> dict[str, str]:
    name = req["name"]
    greeting_id = str(ctx.uuid())
    await ctx.run_typed("Notification", send_notification, restate.RunOptions(), greeting_id, name)
    await ctx.sleep(timedelta(seconds=1))
    await ctx.run_typed("Reminder", send_reminder, restate.RunOptions(), greeting_id, name)
    return {"result": f"You said hi to {name}!"}


app = restate.app([greeter])
