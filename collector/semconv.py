"""Every telemetry name imagecost emits or reads: the contract between collector and ledger.

No other module spells an attribute, event or metric name as a string literal; the ledger maps
span attributes to ledger columns from this module alone.

GenAI names follow the OpenTelemetry semantic conventions v1.41.0 (the last core release with the
full GenAI docs; all ``gen_ai.*`` names are Development status there). ``error.type`` and
``server.*`` are Stable. There is no standard image operation, so image calls use
``generate_content`` with ``gen_ai.output.type = image`` and everything image-specific lives under
the project prefix ``imagecost.`` (the spec owns ``gen_ai.*`` and ``openai.*``).
"""

from __future__ import annotations

SEMCONV_SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"
INSTRUMENTATION_SCOPE = "imagecost.collector"

# --- GenAI semantic conventions (v1.41.0) -------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"
# Billed totals. Images API: usage.input_tokens / output_tokens. Responses: mainline usage plus
# tool_usage.image_gen, so the totals stay "everything this operation billed".
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"

OPERATION_GENERATE_CONTENT = "generate_content"
PROVIDER_OPENAI = "openai"
OUTPUT_TYPE_IMAGE = "image"
TOKEN_TYPE_INPUT = "input"
TOKEN_TYPE_OUTPUT = "output"
ERROR_TYPE_OTHER = "_OTHER"

# --- imagecost: route and models ---------------------------------------------------------
ROUTE = "imagecost.route"  # images.generate | images.edit | responses
ROUTE_OWNER = "imagecost.route_owner"  # "openai" or the gateway's name
# The image model as requested: the `model` argument (Images API) or tools[].model (Responses).
IMAGE_MODEL_REQUESTED = "imagecost.image.model.requested"
# True when Responses' tools[].model was not set and the documented default was recorded instead.
IMAGE_MODEL_ASSUMED = "imagecost.image.model.assumed"
# The model the server says it used (gateways echo one; OpenAI's ImagesResponse has none).
IMAGE_MODEL_REPORTED = "imagecost.image.model.reported"
MAINLINE_MODEL = "imagecost.mainline.model"  # Responses: the top-level `model` requested
SERVICE_TIER = "imagecost.service_tier"  # standard | batch

# --- imagecost: request shape (requested vs effective, i.e. echoed by the response) -----------
IMAGE_N = "imagecost.image.n"
IMAGE_SIZE_REQUESTED = "imagecost.image.size.requested"
IMAGE_SIZE_EFFECTIVE = "imagecost.image.size.effective"
IMAGE_QUALITY_REQUESTED = "imagecost.image.quality.requested"
IMAGE_QUALITY_EFFECTIVE = "imagecost.image.quality.effective"
IMAGE_FORMAT_REQUESTED = "imagecost.image.output_format.requested"
IMAGE_FORMAT_EFFECTIVE = "imagecost.image.output_format.effective"
IMAGE_COMPRESSION_REQUESTED = "imagecost.image.output_compression.requested"
IMAGE_BACKGROUND_REQUESTED = "imagecost.image.background.requested"
IMAGE_BACKGROUND_EFFECTIVE = "imagecost.image.background.effective"
IMAGE_STREAM = "imagecost.image.stream"
PARTIAL_IMAGES_REQUESTED = "imagecost.image.partial_images.requested"
PARTIAL_IMAGES_RECEIVED = "imagecost.image.partial_images.received"
INPUT_IMAGE_COUNT = "imagecost.image.input_images"
IMAGE_MASK = "imagecost.image.mask"
IMAGES_RETURNED = "imagecost.image.count"  # final images received (data[] items / completed events)
PROMPT_HASH = "imagecost.prompt.hash"  # salted sha256, hex
PROMPT_LENGTH = "imagecost.prompt.length"  # characters
PROMPT_TEXT = "imagecost.prompt.text"  # only with capture_prompt=True

# --- imagecost: usage by token class (image model) --------------------------------------------
# Input counts include their cached part (as OpenAI reports them); cached_* are subsets.
USAGE_TEXT_INPUT_TOKENS = "imagecost.usage.text_input_tokens"
USAGE_IMAGE_INPUT_TOKENS = "imagecost.usage.image_input_tokens"
USAGE_CACHED_TEXT_INPUT_TOKENS = "imagecost.usage.cached_text_input_tokens"
USAGE_CACHED_IMAGE_INPUT_TOKENS = "imagecost.usage.cached_image_input_tokens"
USAGE_IMAGE_OUTPUT_TOKENS = "imagecost.usage.image_output_tokens"
USAGE_TEXT_OUTPUT_TOKENS = "imagecost.usage.text_output_tokens"
USAGE_SOURCE = "imagecost.usage.source"  # reported | missing
USAGE_CACHE = "imagecost.usage.cache"  # reported | unknown | not_applicable (Images API has no cache fields)
# Responses: the mainline (text) model's own usage, priced at the mainline model's rates.
MAINLINE_INPUT_TOKENS = "imagecost.mainline.input_tokens"
MAINLINE_CACHED_INPUT_TOKENS = "imagecost.mainline.cached_input_tokens"
MAINLINE_OUTPUT_TOKENS = "imagecost.mainline.output_tokens"

# --- imagecost: outcome and attempts ---------------------------------------------------------
STATUS = "imagecost.status"  # ok | error
ERROR_CODE = "imagecost.error.code"  # OpenAI error.code, e.g. moderation_blocked
MODERATION_STAGE = "imagecost.moderation.stage"  # input | output | unknown
RETRY_REASON = "imagecost.retry_reason"  # cause of the latest failed attempt (taxonomy below)
ATTEMPT_COUNT = "imagecost.attempts"
REQUEST_ID = "imagecost.request_id"  # x-request-id of the final attempt
TAG_PREFIX = "imagecost.tag."  # user tags: imagecost.tag.feature = "hero"

# Retry-reason taxonomy (attempts and final outcome).
RETRY_REASONS = (
    "timeout",
    "connection",
    "rate_limit",
    "billing_limit",
    "policy",
    "validation",
    "size_error",
    "auth",
    "provider_5xx",
    "stream_interrupted",
)

# --- events on the call span ----------------------------------------------------------------
EVENT_ATTEMPT = "imagecost.attempt"  # one per HTTP attempt, SDK retries included
ATTEMPT_NUMBER = "imagecost.attempt.number"  # 0-based, = x-stainless-retry-count
ATTEMPT_STATUS_CODE = "imagecost.attempt.status_code"  # absent for timeouts / connection errors
ATTEMPT_ERROR_TYPE = "imagecost.attempt.error.type"  # OpenAI error.type or exception class
ATTEMPT_ERROR_CODE = "imagecost.attempt.error.code"
ATTEMPT_RETRY_REASON = "imagecost.attempt.retry_reason"
ATTEMPT_DURATION = "imagecost.attempt.duration"  # seconds
ATTEMPT_REQUEST_ID = "imagecost.attempt.request_id"
ATTEMPT_RETRY_AFTER = "imagecost.attempt.retry_after"  # seconds the server asked to wait

EVENT_IMAGE = "imagecost.image"  # one per stored final image: a pointer, never the bytes
IMAGE_INDEX = "imagecost.image.index"
IMAGE_URI = "imagecost.image.uri"
IMAGE_SHA256 = "imagecost.image.sha256"
IMAGE_BYTES = "imagecost.image.bytes"
IMAGE_FORMAT = "imagecost.image.format"
IMAGE_PUBLIC_URL = "imagecost.image.public_url"
IMAGE_DELETE_AFTER = "imagecost.image.delete_after"  # ISO 8601 UTC

# --- metrics -------------------------------------------------------------------------------------
METRIC_OPERATION_DURATION = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE = "gen_ai.client.token.usage"
METRIC_IMAGES = "imagecost.images"
METRIC_PARTIAL_IMAGES = "imagecost.partial_images"
METRIC_TELEMETRY_DROPPED = "imagecost.telemetry.dropped"  # spans the spool could not write

# v1.41.0 model/gen-ai/metrics.yaml explicit bucket boundaries.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)

# --- resource attributes (OTel resource semconv, Stable) ---------------------------------------------
SERVICE_NAME = "service.name"  # the app's service; the ledger's calls.service_name

# --- imagecost: budget guard (collector.guard) ---------------------------------------------------------
# One decision per call, set before anything is sent. The budget named is the one that decided: for
# block / warn the (first, in file order) budget the request would overrun; for allow the matching budget
# with the least headroom left, absent when no budget covers the call.
GUARD_DECISION = "imagecost.guard.decision"  # allow | warn | block
GUARD_BUDGET = "imagecost.guard.budget"  # the budget's name in the budgets file
GUARD_ESTIMATE_USD = "imagecost.guard.estimate_usd"  # this request, pre-flight: hard budget high bound, else expected
GUARD_SPENT_USD = "imagecost.guard.spent_usd"  # that budget's spend this period before this request (ledger + process)
GUARD_LIMIT_USD = "imagecost.guard.limit_usd"
GUARD_PERIOD = "imagecost.guard.period"  # UTC period of that budget: 2026-11-24 (day) or 2026-11 (month)
GUARD_DECISIONS = ("allow", "warn", "block")
ERROR_TYPE_BUDGET_EXCEEDED = "BudgetExceeded"  # error.type of a call the guard blocked (no HTTP request was made)
