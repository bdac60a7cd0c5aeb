"""The shuffle service: one per host, serves the map outputs workers wrote to its directory.

It outlives worker crashes, so a reducer can still read what a dead worker
wrote.  ``GET /v1/shuffle/{app}/{shuffle}/{reduce}?maps=0-3,7`` streams the
reducer's segment of each named map output, one after the other, as frames.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil

from aiohttp import web

from aiospark import faults
from aiospark.protocol.ids import check_app_id
from aiospark.shuffle.layout import map_paths, read_segment_range, shuffle_dir
from aiospark.shuffle.reader import parse_map_ids

_CHUNK = 1 << 20


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=f'{{"error": "{message}"}}', content_type="application/json")


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
        except ValueError as exc:
            raise _bad_request(str(exc)) from None
        numbers = []
        for name in ("shuffle", "reduce"):
            text = info.get(name, "0")
            if not text.isdigit() or len(text) > 9:
                raise _bad_request(f"{name} must be a non-negative integer")
            numbers.append(int(text))
        return app, numbers[0], numbers[1]

    async def get_segments(self, request: web.Request) -> web.StreamResponse:
        app, shuffle, reduce_id = self._ids(request)
        try:
            map_ids = parse_map_ids(request.query.get("maps", ""))
        except ValueError as exc:
            raise _bad_request(f"maps: {exc}") from None
        directory = shuffle_dir(self.root, app, shuffle)
        segments = []
        missing = []
        for map_id in map_ids:
            data_path, index_path = map_paths(directory, map_id)
            try:
                start, length = read_segment_range(index_path, reduce_id)
            except FileNotFoundError:
                missing.append(map_id)
                continue
            except ValueError as exc:
                raise _bad_request(str(exc)) from None
            segments.append((data_path, start, length))
        if missing:
            return web.json_response(
                {"error": "map outputs not found", "missing_maps": missing}, status=404
            )
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        for data_path, start, length in segments:
            with open(data_path, "rb") as f:
                f.seek(start)
                while length > 0:
                    chunk = f.read(min(_CHUNK, length))
                    if not chunk:
                        raise ConnectionResetError(f"{data_path} is shorter than its index")
                    length -= len(chunk)
                    await response.write(chunk)
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
