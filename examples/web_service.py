"""A web service (aiohttp) that answers each request with jobs on an embedded aiospark cluster.

    python examples/web_service.py              # serves http://127.0.0.1:8080 until Ctrl-C
    python examples/web_service.py --port 0     # any free port

It prints where it listens:

    serving 200,000 orders on http://127.0.0.1:8080 (try: curl http://127.0.0.1:8080/customers/7)

The application's ``cleanup_ctx`` hook starts one ``Context`` when the
application starts and stops it when the application stops; in between, a
table of orders generated on the workers stays cached there.  Every request
runs its own jobs on that one cluster: as actions are coroutines, the cluster
works on the jobs of many requests at once while the event loop goes on
serving.  Rows are streamed to the client as newline-delimited JSON as the
job's partitions arrive (``async for row in rdd``), so a large answer never
sits whole in the service:

    GET /customers/{customer}  that customer's orders by id: {"id", "product", "amount", ...}
    GET /products              per product, by name: {"product", "orders", "revenue"}
    GET /stats                 {"orders", "customers", "revenue"}

Amounts are in cents.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import operator
import random
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

import aiospark

PRODUCTS = ("anchor", "bicycle", "candle", "drum", "easel", "flute", "globe", "hammock")
#: Orders generated per block (one task each).
BLOCK = 10_000

Order = tuple[int, int, str, int, int]  # (id, customer, product, quantity, price in cents)

CONTEXT = web.AppKey("context", aiospark.Context)
ORDERS = web.AppKey("orders", aiospark.RDD)


# -- the data ---------------------------------------------------------------------------------


def order_block(seed: int, orders: int, customers: int, block: int) -> list[Order]:
    """Block ``block`` of the generated orders; the same in any process.

    >>> order_block(1, 3, 10, 0)[0]
    (0, 9, 'easel', 3, 6073)
    """
    rng = random.Random(f"{seed}-{block}")
    first, last = block * BLOCK, min(orders, (block + 1) * BLOCK)
    return [
        (
            i,
            rng.randrange(customers),
            rng.choice(PRODUCTS),
            rng.randint(1, 5),
            rng.randint(99, 9999),
        )
        for i in range(first, last)
    ]


def all_orders(seed: int, orders: int, customers: int) -> list[Order]:
    """Every order, generated in this process (what the tests compare against)."""
    blocks = -(-orders // BLOCK)
    return [o for block in range(blocks) for o in order_block(seed, orders, customers, block)]


def as_row(order: Order) -> dict[str, Any]:
    """An order as a JSON object."""
    i, customer, product, quantity, price = order
    return {
        "id": i,
        "customer": customer,
        "product": product,
        "quantity": quantity,
        "price": price,
        "amount": quantity * price,
    }


def add_totals(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """Merge two ``(orders, revenue)`` pairs."""
    return a[0] + b[0], a[1] + b[1]


# -- the application --------------------------------------------------------------------------


def make_app(
    orders: int = 200_000, customers: int = 1_000, seed: int = 1, workers: int | None = None
) -> web.Application:
    """The application; its cluster starts and stops with it."""

    async def cluster(app: web.Application) -> AsyncIterator[None]:
        ctx = await aiospark.Context(workers=workers).start()
        blocks = -(-orders // BLOCK)
        table = ctx.parallelize(range(blocks), blocks).flat_map(
            lambda block: order_block(seed, orders, customers, block)
        )
        app[CONTEXT], app[ORDERS] = ctx, table.cache()
        await app[ORDERS].count()  # generate and cache the orders before the first request
        yield
        await ctx.stop()

    app = web.Application()
    app.cleanup_ctx.append(cluster)
    app.router.add_get("/customers/{customer}", customer_orders)
    app.router.add_get("/products", product_totals)
    app.router.add_get("/stats", stats)
    return app


async def stream_rows(request: web.Request, rows: aiospark.RDD) -> web.StreamResponse:
    """Send the records of ``rows`` as NDJSON, chunk by chunk, as they arrive."""
    response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        async for row in rows:  # one partition at a time, the next ones computed meanwhile
            await response.write(json.dumps(row).encode() + b"\n")
    except ConnectionResetError:  # the client left: leaving the loop cancels the jobs
        return response
    await response.write_eof()
    return response


async def customer_orders(request: web.Request) -> web.StreamResponse:
    try:
        customer = int(request.match_info["customer"])
    except ValueError:
        raise web.HTTPBadRequest(text="the customer is a number") from None
    mine = request.app[ORDERS].filter(lambda order: order[1] == customer).map(as_row)
    return await stream_rows(request, mine)


async def product_totals(request: web.Request) -> web.StreamResponse:
    totals = (
        request.app[ORDERS]
        .map(lambda order: (order[2], (1, order[3] * order[4])))
        .reduce_by_key(add_totals)
        .sort_by_key()
        .map(lambda kv: {"product": kv[0], "orders": kv[1][0], "revenue": kv[1][1]})
    )
    return await stream_rows(request, totals)


async def stats(request: web.Request) -> web.Response:
    orders = request.app[ORDERS]
    count, customers, revenue = await asyncio.gather(  # three jobs at once
        orders.count(),
        orders.map(operator.itemgetter(1)).distinct().count(),
        orders.map(lambda order: order[3] * order[4]).sum(),
    )
    return web.json_response({"orders": count, "customers": customers, "revenue": revenue})


# -- the command line -------------------------------------------------------------------------


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=None, help="worker processes")
    args = parser.parse_args(argv)

    runner = web.AppRunner(make_app(args.orders, args.customers, workers=args.workers))
    await runner.setup()  # runs the startup hooks: the cluster starts
    try:
        await web.TCPSite(runner, args.host, args.port).start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}"
        print(f"serving {args.orders:,} orders on {url} (try: curl {url}/customers/7)", flush=True)
        await asyncio.Event().wait()  # until Ctrl-C cancels this
    finally:
        await runner.cleanup()  # the cleanup hooks: the cluster stops


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
