"""The Greeter from the talk: a durable handler that survives crashes.

Run it on undying with ``make run`` (every example), or on its own with
``undying dev examples/greeter.py``, then:

    curl -X POST localhost:8080/Greeter/greet -H 'content-type: application/json' \
         -d '{"name": "Bob"}'

Every step is journaled: kill the server during the sleep, start it again, and the greeting
still arrives, with the notification sent exactly once and the same greeting id throughout.
"""

from __future__ import annotations

from datetime import timedelta

import undying

greeter = undying.Service("Greeter")


def send_notification(greeting_id: str, name: str) -> None:
    print(f"Notification {greeting_id}: hi {name}!", flush=True)


def send_reminder(greeting_id: str, name: str) -> None:
    print(f"Reminder {greeting_id}: don't forget {name}!", flush=True)


@greeter.handler()
async def greet(ctx: undying.Context, req: dict[str, str]) -> dict[str, str]:
    """Say hi to ``req["name"]``: a notification now, a reminder a second later."""
    name = req["name"]
    greeting_id = str(ctx.uuid())  # deterministic: the same on every retry and replay
    await ctx.run("Notification", send_notification, greeting_id, name)
    await ctx.sleep(timedelta(seconds=1))  # a durable timer: the invocation may suspend
    await ctx.run("Reminder", send_reminder, greeting_id, name)
    return {"result": f"You said hi to {name}!"}


app = undying.app([greeter])
