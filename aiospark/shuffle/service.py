"""The shuffle service: one per host, serves the map outputs workers wrote to its directory.

It outlives worker crashes, so a reducer can still read what a dead worker
wrote.  ``GET /v1/shuffle/{app}/{shuffle}/{reduce}?maps=0-3,7`` streams the
reducer's segment of each named map output, one after the other, as frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import Iterator

from aiohttp import web

from aiospark import faults
from aiospark.protocol.ids import check_app_id, parse_id
from aiospark.protocol.jsonbody import bad_request
from aiospark.shuffle.layout import map_paths, read_segment_range, shuffle_dir
from aiospark.shuffle.reader import parse_map_ids

_CHUNK = 1 << 20
#: Index files one call off the loop reads.
_LOCATE_BATCH = 1024
#: Missing map ids a 404 lists (it counts them all).
_MISSING_SHOWN = 100


def _locate(directory: str, map_ids: list[int], reduce_id: int
            ) -> tuple[list[tuple[str, int, int]], list[int]]:
    """(Off the loop.)  Each map output's segment for ``reduce_id``, and the missing maps."""
    found, missing = [], []
    for map_id in map_ids:
        data_path, index_path = map_paths(directory, map_id)
        try:
            start, length = read_segment_range(index_path, reduce_id)
        except FileNotFoundError:
            missing.append(map_id)
            continue
        found.append((data_path, start, length))
    return found, missing


def _pieces(segments: list[tuple[str, int, int]]) -> Iterator[bytes]:
    """(Off the loop, one piece per call.)  The segments' bytes, at most ``_CHUNK`` a piece."""
    buffer = bytearray()
    for data_path, start, length in segments:
        if not length:
            continue
        with open(data_path, "rb") as f:
            f.seek(start)
            while length > 0:
                chunk = f.read(min(_CHUNK - len(buffer), length))
                if not chunk:
                    raise ConnectionResetError(
                        f"map output {os.path.basename(data_path)} is shorter than its index")
                length -= len(chunk)
                buffer += chunk
                if len(buffer) >= _CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
    if buffer:
        yield bytes(buffer)


class ShuffleService:
    """Serves shuffle files below ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/shuffle/{app}/{shuffle}/{reduce}", self.get_segments),
            web.delete("/v1/shuffle/{app}", self.delete_app),
            web.get("/v1/health", self.health),
            web.delete("/v1/shuffle/{app}/{shuffle}", self.delete_shuffle),
        ]

    def _ids(self, request: web.Request) -> tuple[str, int, int]:
        info = request.match_info
        try:
            app = check_app_id(info["app"])
            shuffle = parse_id(info.get("shuffle", "0"), "shuffle")
            reduce_id = parse_id(info.get("reduce", "0"), "reduce")
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return app, shuffle, reduce_id

    async def get_segments(self, request: web.Request) -> web.StreamResponse:
        app, shuffle, reduce_id = self._ids(request)
        try:
            map_ids = parse_map_ids(request.query.get("maps", ""))
        except ValueError as exc:
            raise bad_request(f"maps: {exc}") from None
        directory = shuffle_dir(self.root, app, shuffle)
        # Index files are opened off the loop, a bounded number per call: a request naming
        # many maps holds a thread for a while, never the loop.
        segments: list[tuple[str, int, int]] = []
        missing: list[int] = []
        for first in range(0, len(map_ids), _LOCATE_BATCH):
            try:
                found, absent = await asyncio.to_thread(
                    _locate, directory, map_ids[first : first + _LOCATE_BATCH], reduce_id)
            except ValueError as exc:
                raise bad_request(str(exc)) from None
            segments.extend(found)
            missing.extend(absent)
            if missing and not os.path.isdir(directory):
                missing = map_ids  # the whole shuffle is gone: no use looking further
                break
        if missing:
            return web.json_response(
                {"error": "map outputs not found", "missing_count": len(missing),
                 "missing_maps": missing[:_MISSING_SHOWN]}, status=404
            )
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        pieces = _pieces(segments)
        try:
            while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
                await response.write(piece)
        finally:
            with contextlib.suppress(ValueError):  # (still running in its thread)
                pieces.close()
        await response.write_eof()
        return response

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "faults": dict(faults.PLAN.injected)})

    async def delete_app(self, request: web.Request) -> web.Response:
        app, _, _ = self._ids(request)
        path = os.path.join(self.root, app)
        await asyncio.to_thread(shutil.rmtree, path, True)
        return web.json_response({"deleted": app})

    async def delete_shuffle(self, request: web.Request) -> web.Response:
        app, shuffle, _ = self._ids(request)
        await asyncio.to_thread(shutil.rmtree, shuffle_dir(self.root, app, shuffle), True)
        return web.json_response({"deleted": f"{app}/{shuffle}"})


async def run_shuffle_service(args) -> None:
    """Entry point of ``aiospark shuffle-service``."""
    from aiospark.protocol.auth import auth_middleware
    from aiospark.runtime import serve, wait_for_stop

    service = ShuffleService(args.dir)
    app = web.Application(
        middlewares=[auth_middleware(args.secret), faults.middleware()], client_max_size=1 << 20
    )
    app.add_routes(service.routes())
    runner, url = await serve(app, args.host, args.port, fd=args.fd, advertise=args.advertise_host)
    logging.getLogger("aiospark.shuffle").info("shuffle service serving %s at %s", args.dir, url)
    try:
        await wait_for_stop(args.parent_pid)
    finally:
        await runner.cleanup()
        if args.cleanup:
            shutil.rmtree(args.dir, ignore_errors=True)
