"""A trip booking saga: every reservation is undone if the trip cannot be booked.

``Trips.book`` reserves a flight, then a hotel, asks the traveller to confirm, and charges the
card. Before each reservation it records how to undo it (the compensation). When the booking
fails for good (a :class:`~undying.TerminalError`: the traveller declines, no answer in time,
the card is declined) or is cancelled, the compensations run, in reverse order, each as a
durable step. Other failures (a flaky API) are retried and never trigger compensation.

Run it with ``make run`` or ``undying dev examples/saga.py``, then:

    curl -X POST localhost:8080/Trips/book -H 'content-type: application/json' \
         -d '{"traveller": "Ada", "flight": "LH 123", "hotel": "Adlon", "card": "4242"}'

The service prints the line to confirm the trip with (``.../resolve -d true``, or ``-d false``
to decline). A card ending in ``0000`` is declined. Cancel a booking that waits for its
confirmation with ``restate invocations cancel <id>``: the reservations are undone too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

import undying

trips = undying.Service("Trips")

#: How long the traveller has to confirm.
CONFIRMATION_TIMEOUT = timedelta(hours=1)


@dataclass
class Trip:
    traveller: str
    flight: str
    hotel: str
    card: str


@dataclass
class Booking:
    booking_id: str
    flight: str
    hotel: str


# -- the (pretend) partner APIs ------------------------------------------------------------------


def reserve_flight(booking_id: str, trip: Trip) -> None:
    print(f"[{trip.traveller}] flight {trip.flight} reserved ({booking_id})", flush=True)


def cancel_flight(booking_id: str, trip: Trip) -> None:
    print(f"[{trip.traveller}] flight {trip.flight} cancelled ({booking_id})", flush=True)


def reserve_hotel(booking_id: str, trip: Trip) -> None:
    print(f"[{trip.traveller}] hotel {trip.hotel} reserved ({booking_id})", flush=True)


def cancel_hotel(booking_id: str, trip: Trip) -> None:
    print(f"[{trip.traveller}] hotel {trip.hotel} cancelled ({booking_id})", flush=True)


def ask_to_confirm(trip: Trip, confirmation_id: str) -> None:
    print(
        f"[{trip.traveller}] confirm the trip: curl -X POST "
        f"localhost:8080/restate/awakeables/{confirmation_id}/resolve "
        "-H 'content-type: application/json' -d true",
        flush=True,
    )


def charge(booking_id: str, trip: Trip) -> None:
    if trip.card.endswith("0000"):
        raise undying.TerminalError(f"card {trip.card} was declined", status_code=402)
    print(f"[{trip.traveller}] card {trip.card} charged ({booking_id})", flush=True)


# -- the saga ------------------------------------------------------------------------------------


@trips.handler()
async def book(ctx: undying.Context, trip: Trip) -> Booking:
    """Book the trip, or undo every reservation made and fail."""
    booking_id = str(ctx.uuid())
    compensations: list[Callable[[], Awaitable[None]]] = []
    try:
        # Each compensation is recorded *before* its step: a reservation may have gone through
        # even when its step failed or was cancelled before we saw the answer.
        compensations.append(lambda: ctx.run("cancel flight", cancel_flight, booking_id, trip))
        await ctx.run("reserve flight", reserve_flight, booking_id, trip)

        compensations.append(lambda: ctx.run("cancel hotel", cancel_hotel, booking_id, trip))
        await ctx.run("reserve hotel", reserve_hotel, booking_id, trip)

        confirmation_id, confirmed = ctx.awakeable(bool)
        await ctx.run("ask to confirm", ask_to_confirm, trip, confirmation_id)
        first, answer = await undying.select(
            answer=confirmed, timeout=ctx.sleep(CONFIRMATION_TIMEOUT)
        )
        if first == "timeout":
            raise undying.TerminalError("the trip was not confirmed in time", status_code=408)
        if not answer:
            raise undying.TerminalError("the traveller declined the trip", status_code=409)

        await ctx.run("charge", charge, booking_id, trip)
    except undying.TerminalError:  # also undying.InvocationCancelled
        for compensate in reversed(compensations):
            await compensate()
        raise
    return Booking(booking_id=booking_id, flight=trip.flight, hotel=trip.hotel)


app = undying.app([trips])
