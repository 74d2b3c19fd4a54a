"""The HTTP API and the web page: a FastAPI app over a :class:`~aerec.serve.engine.ServingModel`.

Endpoints (JSON; OpenAPI docs at ``/docs``)::

    GET  /health                                  model kind, users, items, scale, version, limits
    GET  /v1/items?query=&limit=                  items by title (most-rated first)
    GET  /v1/items/{item_id}/similar?n=           the n items most like one item (cosine similarity)
    GET  /v1/users/{user_id}/recommendations?n=&explain=   top-n for a user the model was trained on
    POST /v1/recommendations  {"ratings": {...}, "n": 10, "explain": false}   top-n for a new user (fold-in)
    POST /v1/predict          {"pairs": [["user", "item"], ...]}  predicted ratings
    GET  /                                        the web page (static/index.html)

Errors are JSON ``{"detail": "<one readable sentence>"}``: 404 for an id the model does not
know (naming it), 422 for malformed JSON, wrong types, ratings off the scale or past a limit,
413 for a body over ``max_body_bytes``. Validation errors also carry FastAPI's ``errors`` list.

The app is thin: lookups, scoring and ranking live in :mod:`aerec.serve.engine`.
"""

from __future__ import annotations

import math
import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Union

from fastapi import FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

import aerec
from aerec.errors import AerecError, ConfigError, DataError
from aerec.serve.engine import Scored, ServingModel, UnknownIdError
from aerec.serve.settings import ServeSettings

__all__ = ["create_app", "app_from_env", "MODEL_ENV"]

MODEL_ENV = "AEREC_SERVE_MODEL"
"""The environment variable naming the model directory for :func:`app_from_env`."""

MAX_QUERY_CHARS = 200
SCORE_DIGITS = 4  # scores and predictions are float32 inside; 4 decimals is what they mean

# The page's files, served from memory by name: nothing else under static/ (or anywhere on
# disk) can be reached through a URL, so there is no path to traverse.
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

# ----------------------------------------------------------------------------- schemas
Rating = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # 4 and 4.5, not "4", true or NaN
Id = Annotated[Union[StrictStr, StrictInt], Field(description="an id as GET /v1/items or the training file gives it")]


class RecommendRequest(BaseModel):
    """A new user's ratings, ``{item_id: rating}``, and how many recommendations to return."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"ratings": {"50": 5, "172": 4, "133": 1}, "n": 10}]},
    )
    ratings: dict[str, Rating] = Field(default_factory=dict, description="item id -> rating on the model's scale")
    n: StrictInt = Field(10, ge=1, description="how many recommendations (at most the server's max_n)")
    explain: StrictBool = Field(False, description="give each recommendation a `because` list: the rated items that "
                                                   "pushed it up most (docs/explanations.md)")
    explain_top: StrictInt = Field(3, ge=1, description="with explain: at most this many rated items each "
                                                        "(at most max_n)")


class PredictRequest(BaseModel):
    """(user_id, item_id) pairs to predict ratings for."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"pairs": [["196", "242"], ["186", "302"]]}]})
    pairs: list[tuple[Id, Id]] = Field(description="[user_id, item_id] pairs")


class Reason(BaseModel):
    item_id: str = Field(description="one of the user's rated items")
    title: str | None = None
    rating: float | None = Field(description="the user's rating of it (None for implicit models: they read only "
                                             "that it was liked)")
    contribution: float = Field(description="how much it raised the recommended item's score, in the model's own "
                                            "units (docs/explanations.md); always > 0")


class Recommendation(BaseModel):
    item_id: str
    score: float = Field(description="what the list is ranked by: for rating models the relevance (the item's share "
                                     "of raters x the calibrated chance of a liked rating, 0..1); for implicit top-N "
                                     "models their ranking score")
    prediction: float | None = Field(default=None, description="predicted rating on the model's scale (rating models)")
    title: str | None = None
    genres: list[str] = Field(default_factory=list)
    because: list[Reason] | None = Field(default=None, description="only when explain was asked: the user's rated "
                                         "items that pushed this item up most, largest first (\"because you liked\")")


class Recommendations(BaseModel):
    recommendations: list[Recommendation]


class UserRecommendations(BaseModel):
    user_id: str
    recommendations: list[Recommendation]


class Item(BaseModel):
    item_id: str
    title: str | None = None
    genres: list[str] = Field(default_factory=list)
    ratings: int = Field(description="how many training ratings the item has")


class Items(BaseModel):
    items: list[Item]
    total: int = Field(description="how many items match the query")


class SimilarItem(BaseModel):
    item_id: str
    score: float = Field(description="cosine similarity (-1..1) of the two items' vectors in the model")
    title: str | None = None
    genres: list[str] = Field(default_factory=list)


class SimilarItems(BaseModel):
    item_id: str
    title: str | None = None
    similar: list[SimilarItem] = Field(description="most similar first; the item itself and items nobody rated "
                                                   "are left out")


class Prediction(BaseModel):
    user_id: str
    item_id: str
    rating: float = Field(description="predicted rating, clipped to the scale")
    fallback: bool = Field(description="true when the bias model answered (user or item without training ratings)")


class Predictions(BaseModel):
    predictions: list[Prediction]


class Health(BaseModel):
    status: str
    model: str
    users: int
    items: int
    scale: dict[str, Any]
    titles: bool = Field(description="whether item titles are known")
    task: str = Field("rating", description="rating (predicts ratings) or implicit (a top-N model: ranks items, "
                      "scores are not ratings, /v1/predict answers 422)")
    aerec_version: str
    limits: dict[str, int]


class Problem(BaseModel):
    """Every error answer: one sentence, plus the validator's details for malformed requests."""

    detail: str
    errors: list[dict[str, Any]] | None = None


_BAD_INPUT = {422: {"model": Problem, "description": "malformed JSON, wrong types, a value off the scale or past a limit"}}
ERRORS = {404: {"model": Problem, "description": "an id the model does not know"}, **_BAD_INPUT}
BODY_ERRORS = {
    **ERRORS,
    400: {"model": Problem, "description": "an unreadable Content-Length header"},
    413: {"model": Problem, "description": "a request body past the size limit"},
}


# ----------------------------------------------------------------------------- body size limit
class BodyTooLarge(StarletteHTTPException):
    """Raised while reading a body past the limit (an HTTPException, so FastAPI passes it on)."""


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, declared (Content-Length) or streamed."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _detail(self) -> str:
        return (f"the request body is larger than this server's limit of {self.max_bytes} bytes "
                "(raise it with --max-body-bytes or AEREC_SERVE_MAX_BODY_BYTES)")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and not declared.isdigit():
            await JSONResponse({"detail": "the Content-Length header is not a number"}, status_code=400)(scope, receive, send)
            return
        if declared is not None and int(declared) > self.max_bytes:
            await JSONResponse({"detail": self._detail()}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(413, self._detail())
            return message

        await self.app(scope, limited_receive, send)


# ----------------------------------------------------------------------------- the app
def create_app(model: Any, settings: ServeSettings | None = None) -> FastAPI:
    """The FastAPI app serving ``model``.

    Args:
        model: a model directory, a fitted :class:`~aerec.Recommender` or
            :class:`~aerec.implicit.ImplicitRecommender`, or a :class:`ServingModel`.
        settings: limits and CORS (default: :meth:`ServeSettings.from_env`).
    """
    if isinstance(model, (str, os.PathLike)):
        from aerec.loading import load_model

        model = load_model(Path(model))  # a rating model or an implicit top-N model
    engine = model if isinstance(model, ServingModel) else ServingModel(model)
    settings = settings or ServeSettings.from_env()
    app = FastAPI(
        title="aerec",
        version=aerec.__version__,
        summary="Recommendations from an autoencoder recommender trained with aerec.",
        description="Ids are strings exactly as `GET /v1/items` returns them. "
        "Errors are `{\"detail\": \"...\"}` with status 404 (unknown id), 413 (body too large) or 422.",
    )
    app.state.engine, app.state.settings = engine, settings
    _install_error_handlers(app)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Content-Type"])
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    _add_model_routes(app, engine, settings)
    _add_recommendation_routes(app, engine, settings)
    _add_page_routes(app, _read_static())
    return app


def _check_n(settings: ServeSettings, n: int, what: str = "n") -> None:
    if n > settings.max_n:
        raise HTTPException(422, f"{what} must be at most {settings.max_n} (this server's max_n; "
                                 f"raise it with --max-n or AEREC_SERVE_MAX_N); got {n}")


def _add_model_routes(app: FastAPI, engine: ServingModel, settings: ServeSettings) -> None:
    """``/health`` and ``/v1/items``: what is being served."""

    @app.get("/health", response_model=Health, tags=["model"])
    def health() -> dict[str, Any]:
        """The model being served: kind, users, items, rating scale, aerec version, limits."""
        return {"status": "ok", **engine.info(), "aerec_version": aerec.__version__, "limits": settings.public()}

    @app.get("/v1/items", response_model=Items, tags=["items"], responses=_BAD_INPUT)
    def items(
        query: Annotated[str, Query(max_length=MAX_QUERY_CHARS, description="part of a title or an item id")] = "",
        limit: Annotated[int, Query(ge=1, description="most items to return (at most max_n)")] = 20,
    ) -> dict[str, Any]:
        """Items whose title contains ``query`` (case-insensitive), most-rated first."""
        _check_n(settings, limit, "limit")
        total, hits = engine.search(query, limit)
        return {"items": [engine.item_record(k) for k in hits], "total": total}

    @app.get("/v1/items/{item_id}/similar", response_model=SimilarItems, tags=["items"], responses=ERRORS)
    def similar(
        item_id: Annotated[str, PathParam(description="an item id from the training data")],
        n: Annotated[int, Query(ge=1, description="how many similar items (at most max_n)")] = 10,
    ) -> dict[str, Any]:
        """The ``n`` items most like ``item_id``, by the cosine similarity of the item vectors the
        model learned ("more like this"; docs/models.md, "Similar items")."""
        _check_n(settings, n)
        found = engine.similar(item_id, n)
        return {"item_id": item_id, "title": engine.titles[int(engine.item_index([item_id])[0])],
                "similar": [{"item_id": s.item_id, "score": round(s.score, SCORE_DIGITS), "title": s.title,
                             "genres": s.genres} for s in found]}


def _add_recommendation_routes(app: FastAPI, engine: ServingModel, settings: ServeSettings) -> None:
    """Top-n lists for known and new users, and predicted ratings."""

    # A record has "because" only when it was asked for (exclude_unset): other answers are unchanged.
    @app.get("/v1/users/{user_id}/recommendations", response_model=UserRecommendations, tags=["recommendations"],
             responses=ERRORS, response_model_exclude_unset=True)
    def recommend_user(
        user_id: Annotated[str, PathParam(description="a user id from the training data")],
        n: Annotated[int, Query(ge=1, description="how many recommendations")] = 10,
        explain: Annotated[bool, Query(description="give each a `because` list (\"because you liked\")")] = False,
        explain_top: Annotated[int, Query(ge=1, description="with explain: at most this many rated items each")] = 3,
    ) -> dict[str, Any]:
        """Top-``n`` items for a user the model was trained on, leaving out what they rated; with
        ``explain=true``, each with the user's rated items that pushed it up most."""
        _check_n(settings, n)
        _check_n(settings, explain_top, "explain_top")
        found = engine.recommend_user(user_id, n, explain_top if explain else 0)
        return {"user_id": user_id, "recommendations": _records(found)}

    @app.post("/v1/recommendations", response_model=Recommendations, tags=["recommendations"], responses=BODY_ERRORS,
              response_model_exclude_unset=True)
    def recommend_new(body: RecommendRequest) -> dict[str, Any]:
        """Top-``n`` items for a new user from a few ratings (fold-in; no retraining).

        The rated items are left out of the answer. With no ratings, the best-liked items overall.
        With ``"explain": true``, each with the given items that pushed it up most.
        """
        _check_n(settings, body.n)
        _check_n(settings, body.explain_top, "explain_top")
        if len(body.ratings) > settings.max_ratings:
            raise HTTPException(422, f"too many ratings: {len(body.ratings)}; this server takes at most "
                                     f"{settings.max_ratings} (raise it with --max-ratings or AEREC_SERVE_MAX_RATINGS)")
        found = engine.recommend_new(body.ratings, body.n, body.explain_top if body.explain else 0)
        return {"recommendations": _records(found)}

    @app.post("/v1/predict", response_model=Predictions, tags=["recommendations"], responses=BODY_ERRORS)
    def predict(body: PredictRequest) -> dict[str, Any]:
        """Predicted ratings for (user_id, item_id) pairs; a pair with a user or item the model does not
        know gets the bias model's rating and ``fallback: true`` (the rest of the batch is unaffected)."""
        if len(body.pairs) > settings.max_pairs:
            raise HTTPException(422, f"too many pairs: {len(body.pairs)}; this server takes at most "
                                     f"{settings.max_pairs} (raise it with --max-pairs or AEREC_SERVE_MAX_PAIRS)")
        pairs = [(str(u), str(i)) for u, i in body.pairs]
        values, fallback = engine.predict(pairs)  # an implicit model refuses even an empty list
        return {"predictions": [
            {"user_id": u, "item_id": i, "rating": round(float(v), SCORE_DIGITS), "fallback": bool(f)}
            for (u, i), v, f in zip(pairs, list(values), list(fallback))
        ]}


def _add_page_routes(app: FastAPI, pages: dict[str, bytes]) -> None:
    """The web page and its files, served from memory."""

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return _static_response(pages, "index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in pages:
            raise HTTPException(404, f"no such file: {name!r}")
        return _static_response(pages, name)


def app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and worker processes: model from ``$AEREC_SERVE_MODEL``."""
    directory = os.environ.get(MODEL_ENV)
    if not directory:
        raise ConfigError(f"set {MODEL_ENV} to a model directory written by `aerec train --out DIR`")
    return create_app(directory, ServeSettings.from_env())


def _records(items: list[Scored]) -> list[dict[str, Any]]:
    return [{"item_id": s.item_id, "score": round(s.score, SCORE_DIGITS),
             "prediction": None if s.prediction is None else round(s.prediction, SCORE_DIGITS),
             "title": s.title, "genres": s.genres}
            | ({} if s.because is None else {"because": [{**b, "contribution": round(b["contribution"], 6)}
                                                         for b in s.because]})
            for s in items]


def _read_static() -> dict[str, bytes]:
    folder = resources.files("aerec.serve") / "static"
    return {name: (folder / name).read_bytes() for name in STATIC_FILES}


def _static_response(pages: dict[str, bytes], name: str) -> Response:
    return Response(pages[name], media_type=STATIC_FILES[name], headers=PAGE_HEADERS)


def _install_error_handlers(app: FastAPI) -> None:
    """Every error is ``{"detail": "<a sentence>"}`` with the right status."""

    @app.exception_handler(UnknownIdError)
    async def unknown_id(request: Request, exc: UnknownIdError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(DataError)
    async def bad_data(request: Request, exc: DataError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(AerecError)
    async def aerec_error(request: Request, exc: AerecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422 if exc.exit_code == 2 else 500)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        return JSONResponse({"detail": _explain(errors), "errors": _finite(jsonable_encoder(errors))}, status_code=422)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: an echoed ``NaN`` input becomes the text ``"nan"``."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _explain(errors: Any) -> str:
    """One sentence for the first validation error, e.g. ``body.ratings.50: Input should be ...``."""
    if not errors:
        return "the request is not valid"
    first = errors[0]
    if first.get("type") == "json_invalid":
        why = (first.get("ctx") or {}).get("error", "")
        return f"the request body is not valid JSON ({why})" if why else "the request body is not valid JSON"
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body",)) or "request"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {first.get('msg', 'invalid value')}{more}"
