"""The Python reference for bench/product.sh: the product path as the stack
AutoBot replaces would run it.

Role `backend`: `POST /api/chat` validates the body and posts it to the
ai-stack's `POST /v1/chat` with a pooled httpx client, answering what it
answers. Role `ai-stack`: `POST /v1/chat` calls the Ollama stand-in's
`/api/chat` (Ollama's wire format, pooled httpx client) inside an
`llm.inference` CLIENT span carrying the same llm.* and gen_ai.* attributes
as autobot-ai-stack's, and answers `{reply, model, provider, usage}`.
Both use the official OpenTelemetry SDK with the FastAPI and httpx
instrumentations, ParentBased(TraceIdRatioBased) and a batch processor
exporting OTLP/gRPC to the same sink as the Rust services.

Environment: PRODUCT_ROLE (backend|ai-stack), PRODUCT_AI_STACK_URL
(backend), PRODUCT_OLLAMA_URL (ai-stack), BENCH_SERVICE_NAME,
AUTOBOT_JAEGER_ENDPOINT, AUTOBOT_TRACE_SAMPLE_RATE, OTEL_SDK_DISABLED.
Run: uvicorn product:app --host 127.0.0.1 --port N --no-access-log
"""

import os
import time
from typing import List, Literal, Optional

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
from pydantic import BaseModel

ROLE = os.environ["PRODUCT_ROLE"]
if ROLE not in ("backend", "ai-stack"):
    raise SystemExit(f"PRODUCT_ROLE={ROLE!r} is invalid: expected backend or ai-stack")
UPSTREAM = os.environ.get("PRODUCT_AI_STACK_URL" if ROLE == "backend" else "PRODUCT_OLLAMA_URL", "")
if not UPSTREAM.startswith("http"):
    raise SystemExit(f"the upstream URL {UPSTREAM!r} of role {ROLE} is invalid: expected an http:// URL")
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

tracer = trace.get_tracer("bench-product")
app = FastAPI()
client = httpx.AsyncClient(base_url=UPSTREAM, timeout=30.0)
MODEL = "llama3.2"


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    messages: List[Message]
    model: Optional[str] = None
    temperature: Optional[float] = None
    max_tokens: Optional[int] = None
    stream: Optional[bool] = None


def invalid(request: ChatRequest):
    if not request.messages:
        return "messages: at least one message is required"
    for i, m in enumerate(request.messages):
        if not m.content.strip():
            return f"messages[{i}].content: must not be empty"
    return None


@app.post("/api/chat")
async def backend_chat(request: ChatRequest):
    problem = invalid(request)
    if problem:
        return JSONResponse({"error": problem}, status_code=400)
    r = await client.post("/v1/chat", json=request.model_dump(exclude_none=True))
    if r.status_code != 200:
        return JSONResponse({"error": f"ai-stack answered {r.status_code}"}, status_code=502)
    return Response(content=r.content, media_type="application/json")


@app.post("/v1/chat")
async def ai_stack_chat(request: ChatRequest):
    problem = invalid(request)
    if problem:
        return JSONResponse({"error": problem}, status_code=400)
    model = request.model or MODEL
    messages = [m.model_dump() for m in request.messages]
    with tracer.start_as_current_span("llm.inference", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes({
            "llm.provider": "ollama", "llm.model": model, "llm.streaming": False,
            "llm.prompt_messages": len(messages),
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "ollama",
            "gen_ai.request.model": model, "gen_ai.request.stream": False,
            "server.address": client.base_url.host, "server.port": client.base_url.port or 80,
        })
        started = time.monotonic()
        r = await client.post("/api/chat", json={"model": model, "messages": messages, "stream": False})
        if r.status_code != 200:
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"HTTP {r.status_code}"))
            return JSONResponse({"error": f"the LLM answered {r.status_code}"}, status_code=502)
        answer = r.json()
        reply = answer["message"]["content"]
        usage = {"prompt_tokens": answer.get("prompt_eval_count", 0),
                 "completion_tokens": answer.get("eval_count", 0)}
        span.set_attributes({
            "llm.duration_ms": int((time.monotonic() - started) * 1000),
            "llm.response_length": len(reply),
            "llm.prompt_tokens": usage["prompt_tokens"], "llm.completion_tokens": usage["completion_tokens"],
            "gen_ai.response.model": answer["model"],
            "gen_ai.usage.input_tokens": usage["prompt_tokens"],
            "gen_ai.usage.output_tokens": usage["completion_tokens"],
        })
    return {"reply": reply, "model": answer["model"], "provider": "ollama", "usage": usage}


if not DISABLED:
    FastAPIInstrumentor.instrument_app(app)
