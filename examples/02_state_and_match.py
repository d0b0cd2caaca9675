"""A bank account actor: private state, typed messages, and errors returned as values.

This example shows:

- messages as frozen dataclasses, dispatched with Python's ``match``;
- state that only the actor touches, one message at a time, so no locks;
- replies as values: ``ask`` returns what ``receive`` returns;
- refusals (insufficient funds, a bad amount) returned as values, because an
  exception escaping ``receive`` would crash the actor (let it crash is for
  bugs, not for answers);
- ``self.unhandled(message)`` for a message no ``case`` matches: the asker
  gets ``UnhandledMessage``, the system logs a dead letter, the actor lives on;
- many concurrent clients, and a balance that still adds up.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio

import actors
from actors import Actor, ActorRef, ActorSystem, UnhandledMessage

# -- the messages the account understands -------------------------------------


# --8<-- [start:messages]
@dataclass(frozen=True)
class Deposit:
    amount: int


@dataclass(frozen=True)
class Withdraw:
    amount: int


@dataclass(frozen=True)
class GetBalance:
    pass


# -- the replies it gives -----------------------------------------------------


@dataclass(frozen=True)
class Balance:
    amount: int


@dataclass(frozen=True)
class Rejected:
    reason: str


Reply = Balance | Rejected


# --8<-- [end:messages]
# --8<-- [start:account]
class Account(Actor):
    def __init__(self, owner: str, opening_balance: int = 0) -> None:
        self.owner = owner
        self.balance = opening_balance

    async def receive(self, message: object) -> Reply:
        match message:
            case Deposit(amount) | Withdraw(amount) if amount <= 0:
                return Rejected(f"amount must be positive, got {amount}")
            case Deposit(amount):
                self.balance += amount
                return Balance(self.balance)
            case Withdraw(amount) if amount > self.balance:
                return Rejected(f"insufficient funds: balance {self.balance}, asked {amount}")
            case Withdraw(amount):
                self.balance -= amount
                return Balance(self.balance)
            case GetBalance():
                return Balance(self.balance)
            case _:
                return self.unhandled(message)


# --8<-- [end:account]
# --8<-- [start:show]
async def show(account: ActorRef, message: object) -> None:
    try:
        reply = await account.ask(message)
    except UnhandledMessage as error:
        print(f"{message} -> {error}")
        return
    match reply:
        case Balance(amount):
            print(f"{message} -> ok, balance {amount}")
        case Rejected(reason):
            print(f"{message} -> rejected: {reason}")


# --8<-- [end:show]


async def main() -> None:
    async with ActorSystem() as system:
        account = await system.spawn(Account, "Ada", 100, name="ada")

        await show(account, Deposit(50))
        await show(account, Withdraw(30))
        await show(account, Withdraw(500))  # refused, and the actor lives on
        await show(account, Deposit(-5))
        await show(account, "open sesame")
        await show(account, GetBalance())

        # --8<-- [start:clients]
        # A hundred clients at once, each depositing 1 and withdrawing 1. The
        # account handles one message at a time, so no update is lost.
        async def client() -> None:
            await account.tell(Deposit(1))
            await account.ask(Withdraw(1))

        async with anyio.create_task_group() as tg:
            for _ in range(100):
                tg.start_soon(client)
        await show(account, GetBalance())
        # --8<-- [end:clients]


if __name__ == "__main__":
    actors.run(main)
