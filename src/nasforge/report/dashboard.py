"""``nasforge dashboard``: a read-only web app over a store, live while runs are going.

Starlette (a maintained ASGI framework) serves it through uvicorn; no Node.js, no JavaScript
library. Pages are rendered by the same Jinja templates, stylesheet, trial rows and matplotlib
figure builders as the HTML report. The browser polls small JSON endpoints every few seconds,
so a new trial shows up without a reload.

Built for big stores: a page never reads every trial's result. Counts, the best trial and the
curve come from narrow SQL reads (`Store.trial_counts`, `trial_series`); the trial table is
one sorted, filtered page (`Store.trial_page`); the curve SVG is cached until the run changes.
It only reads: no route writes to the store.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from nasforge.errors import ConfigError
from nasforge.report import figures
from nasforge.report.html_report import asset, page, version
from nasforge.report.trial_rows import columns, metric_columns, trial_row
from nasforge.store.sql import PAGE_SORTS

PAGE_SIZE = 50
#: table column -> the `Store.trial_page` sort key behind it
SORTABLE = {
    "trial": "number",
    "state": "state",
    "objective": "objective",
    "fidelity": "fidelity",
    "seconds": "seconds",
    "architecture": "arch",
}
MAX_PAGE = 500


class DashboardData:
    """What the routes show, read from one open store (thread-safe: the store locks)."""

    def __init__(self, store: Any):
        self.store = store
        self._curves: dict[str, tuple[tuple[int, float], str]] = {}
        self._lock = threading.Lock()
        self._drawing = threading.Lock()

    def run(self, name: str) -> Any:
        run = self.store.find_run(name)
        if run is None:
            raise LookupError(f"no run named {name!r} in {self.store.location}")
        return run

    def runs(self) -> list[dict[str, Any]]:
        rows = []
        for name in self.store.run_names():
            run = self.store.find_run(name)
            if run is not None:
                rows.append(self.brief(run))
        return rows

    def brief(self, run: Any) -> dict[str, Any]:
        counts = self.store.trial_counts(run)
        updated = self.store.last_activity(run)
        budget = (run.config.get("budget") or {}).get("evaluations")
        best = self.best(run)
        done = counts["complete"] + counts["failed"]
        return {
            "name": run.name,
            "status": run.effective_status,
            "strategy": run.config.get("strategy"),
            "space": run.config.get("space"),
            "estimator": run.config.get("estimator"),
            "objective": run.config.get("objective", "objective"),
            "counts": counts,
            "budget": budget,
            "progress": None if not budget else min(1.0, done / budget),
            "best": best,
            "created": stamp(run.created),
            "updated": stamp(updated),
            "updated_at": updated,
        }

    def best(self, run: Any) -> dict[str, Any] | None:
        _, top = self.store.trial_page(
            run, limit=1, sort="objective", descending=True, state="complete"
        )
        if not top or top[0].result is None:
            return None
        trial = top[0]
        return {
            "trial": trial.number,
            "objective": trial.result.objective,
            "arch": trial.arch,
            "report": dict(trial.result.report),
        }

    def detail(self, name: str) -> dict[str, Any]:
        run = self.run(name)
        brief = self.brief(run)
        brief["failures"] = [
            {"trial": n, "arch": a, "error": e} for n, a, e in self.store.failures(run, 20)
        ]
        # what the curve depends on, read cheaply: it is redrawn when this changes
        brief["curve_version"] = f"{brief['counts']['complete']}-{brief['updated_at']}"
        return brief

    def curve_svg(self, name: str) -> str:
        """The anytime curve, drawn again only when the run has new complete trials."""
        run = self.run(name)
        key = (self.store.trial_counts(run)["complete"], self.store.last_activity(run))
        with self._lock:
            cached = self._curves.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
        series = self.store.trial_series(run)
        numbers = [row[0] for row in series if row[1] is not None]
        values = [row[1] for row in series if row[1] is not None]
        objective = str(run.config.get("objective", "objective"))
        with self._drawing:  # pyplot's state is global: one figure at a time
            fig = figures.anytime_run_figure(numbers, values, objective, "best so far")
            svg = figures.render(fig)
        with self._lock:
            self._curves[name] = (key, svg)
        return svg

    def trials(self, name: str, params: dict[str, str]) -> dict[str, Any]:
        run = self.run(name)
        offset = bounded_int(params.get("offset"), 0, 0, 10**9)
        limit = bounded_int(params.get("limit"), PAGE_SIZE, 1, MAX_PAGE)
        sort = params.get("sort", "number")
        if sort not in PAGE_SORTS:
            raise ValueError(f"sort must be one of {', '.join(PAGE_SORTS)}, not {sort!r}")
        state = params.get("state") or None
        if state not in (None, "complete", "failed", "running"):
            raise ValueError(f"state must be complete, failed or running, not {state!r}")
        total, trials = self.store.trial_page(
            run,
            offset=offset,
            limit=limit,
            sort=sort,
            descending=params.get("order", "desc") == "desc",
            state=state,
            contains=(params.get("q") or "")[:200] or None,
        )
        metrics = metric_columns(trials)
        return {
            "total": total,
            "offset": offset,
            "limit": limit,
            "columns": columns(metrics),
            "sortable": SORTABLE,
            "rows": [trial_row(t, metrics) for t in trials],
        }


def bounded_int(text: str | None, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"expected a whole number, got {text!r}") from None
    return max(low, min(high, value))


def stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def create_app(store_url: str, refresh: float = 2.0) -> Any:
    """The Starlette app over the store at ``store_url`` (opened at once: a store that does
    not exist or is not a nasforge store is a `ConfigError` before anything is served)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, Response
    from starlette.routing import Route

    from nasforge.report.show import open_existing

    store = open_existing(store_url)
    data = DashboardData(store)
    common = {"store": store.location, "version": version(), "refresh": refresh}

    def html(template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(page(template, **common, **context), status_code=status)

    def error_page(message: str, status: int) -> HTMLResponse:
        return html("dashboard_error.html", status=status, message=message)

    def index(request: Request) -> Response:
        return html("dashboard_runs.html", runs=data.runs())

    def api_runs(request: Request) -> Response:
        return JSONResponse(data.runs())

    def run_page(request: Request) -> Response:
        name = request.path_params["name"]
        return html("dashboard_run.html", run=data.detail(name))

    def api_run(request: Request) -> Response:
        return JSONResponse(data.detail(request.path_params["name"]))

    def api_trials(request: Request) -> Response:
        return JSONResponse(data.trials(request.path_params["name"], dict(request.query_params)))

    def curve(request: Request) -> Response:
        svg = data.curve_svg(request.path_params["name"])
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        types = {"style.css": "text/css", "dashboard.js": "text/javascript"}
        if name not in types:
            raise HTTPException(404, f"no file {name!r}")
        return Response(asset(name), media_type=types[name])

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    async def not_found(request: Request, exc: Exception) -> Response:
        message = exc.detail if isinstance(exc, HTTPException) else str(exc).strip("'\"")
        if isinstance(exc, LookupError):
            message = str(exc.args[0]) if exc.args else str(exc)
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=404)
        return error_page(message, 404)

    async def bad_request(request: Request, exc: Exception) -> Response:
        if wants_json(request):
            return JSONResponse({"error": str(exc)}, status_code=400)
        return error_page(str(exc), 400)

    async def server_error(request: Request, exc: Exception) -> Response:
        # the message, never the traceback: a page shows what went wrong in one line
        message = f"the dashboard could not read the store: {type(exc).__name__}: {exc}"
        message = message.splitlines()[0]
        if wants_json(request):
            return JSONResponse({"error": message}, status_code=500)
        return error_page(message, 500)

    routes = [
        Route("/", index),
        Route("/api/runs", api_runs),
        Route("/api/runs/{name:path}/trials", api_trials),
        Route("/api/runs/{name:path}", api_run),
        Route("/runs/{name:path}/curve.svg", curve),
        Route("/runs/{name:path}", run_page),
        Route("/static/{name}", static),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={
            404: not_found,
            LookupError: not_found,
            ValueError: bad_request,
            ConfigError: bad_request,
            Exception: server_error,
        },
    )
    app.state.store = store
    return app


def serve(store_url: str, host: str = "127.0.0.1", port: int = 8765, refresh: float = 2.0) -> None:
    """Run the dashboard until interrupted."""
    import uvicorn

    app = create_app(store_url, refresh)
    check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    print(f"nasforge dashboard of {app.state.store.location}: http://{shown}:{port}/", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"note: listening on {host}, not only this machine; the dashboard has no login",
            flush=True,
        )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def check_port(host: str, port: int) -> None:
    """A port in use or an address not of this machine is a one-line error before serving
    (uvicorn would log it and exit on its own)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise ConfigError(f"--host {host!r} is not an address of this machine: {err}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            raise ConfigError(
                f"cannot listen on {host}:{port} ({err.strerror or err}); give another --port"
            ) from None
