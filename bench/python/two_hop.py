"""The Python comparison pair for bench/run.sh: the stack AutoBot replaces.

Service A (`GET /hop`) calls service B (`GET /leaf`) with httpx and returns
its body; B answers a small JSON. Both use the official OpenTelemetry SDK with
the FastAPI and httpx instrumentations, a ParentBased(TraceIdRatioBased)
sampler and a batch processor exporting OTLP/gRPC to the same sink as the
Rust pair.

Environment: TWO_HOP_ROLE (a|b), TWO_HOP_LEAF_URL (a), BENCH_SERVICE_NAME,
AUTOBOT_JAEGER_ENDPOINT (http://host:port of the OTLP/gRPC sink),
AUTOBOT_TRACE_SAMPLE_RATE, OTEL_SDK_DISABLED.
Run: uvicorn two_hop:app --host 127.0.0.1 --port N --no-access-log
"""

import os

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

ROLE = os.environ["TWO_HOP_ROLE"]
if ROLE not in ("a", "b"):
    raise SystemExit(f"TWO_HOP_ROLE={ROLE!r} is invalid: expected a or b")
LEAF_URL = os.environ.get("TWO_HOP_LEAF_URL", "")
if ROLE == "a" and not LEAF_URL.startswith("http"):
    raise SystemExit(f"TWO_HOP_LEAF_URL={LEAF_URL!r} is invalid: expected an http:// URL")
DISABLED = os.environ.get("OTEL_SDK_DISABLED", "false").lower() == "true"

if not DISABLED:
    rate = float(os.environ.get("AUTOBOT_TRACE_SAMPLE_RATE", "1.0"))
    provider = TracerProvider(
        resource=Resource.create({"service.name": os.environ.get("BENCH_SERVICE_NAME", f"py-{ROLE}")}),
        sampler=ParentBased(TraceIdRatioBased(rate)),
    )
    endpoint = os.environ.get("AUTOBOT_JAEGER_ENDPOINT", "http://127.0.0.1:4317")
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()

app = FastAPI()
client = httpx.AsyncClient() if ROLE == "a" else None


@app.get("/leaf")
async def leaf():
    return JSONResponse({"leaf": "b", "ok": True})


@app.get("/hop")
async def hop():
    r = await client.get(LEAF_URL)
    if r.status_code != 200:
        return JSONResponse({"error": f"B answered {r.status_code}"}, status_code=502)
    return Response(content=r.content, media_type="application/json")


if not DISABLED:
    FastAPIInstrumentor.instrument_app(app)
