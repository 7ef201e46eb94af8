"""How the simulator counts tokens. Deterministic, so tests can compute every expectation by hand.

- Text input tokens: `ceil(len(prompt) / 4)` (Python `len`, i.e. code points); "" -> 0.
- Image input tokens, per uploaded image of W×H pixels, read with Pillow (a mask adds nothing; §6 is silent):
  the estimator's expected count, `input_image_token_range(model, "WxH", input_fidelity).expected`, i.e.
  scale the shortest side to 512 px, `tiles = ceil(W'/512) × ceil(H'/512)`, low fidelity = `65 + 129 × tiles`
  (gpt-image-1 rule, reference §6); high fidelity adds 4160 (square) or 6240 (otherwise).
  gpt-image-1 / 1.5: low unless the request sends `input_fidelity=high`; gpt-image-1-mini: always low;
  gpt-image-2 family: always high (a stand-in: OpenAI publishes no rule, §6).
  So a 32×32 upload costs 194 tokens on gpt-image-1 and 4354 on gpt-image-2.
- Image output tokens: `n × output_tokens(model, size, quality) + 100 × partial images sent`
  (reference §3.2; `ledger.estimator.output_tokens` = §5.5 table / §5.7 calculator). Text output tokens: 0.
- Responses mainline model: input = `ceil(len(input text) / 4)`, output = 30, cached 0 (responses_route).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.estimator import PARTIAL_IMAGE_TOKENS, output_tokens
from ledger.estimator.tokens import input_image_token_range, prompt_token_range


def text_tokens(text: str) -> int:
    return prompt_token_range(len(text)).expected  # ceil(len / 4)


def image_input_tokens(model: str, width: int, height: int, input_fidelity: str | None = None) -> int:
    return input_image_token_range(model, f"{width}x{height}", input_fidelity).expected


def image_output_tokens(model: str, size: str, quality: str, *, n: int, partials_sent: int) -> int:
    return n * output_tokens(model, size, quality) + PARTIAL_IMAGE_TOKENS * partials_sent


@dataclass(frozen=True)
class ImageUsage:
    """Image-model tokens of one call, with the three shapes the API reports them in."""

    text_input: int
    image_input: int
    image_output: int
    text_output: int = 0

    @property
    def input_tokens(self) -> int:
        return self.text_input + self.image_input

    @property
    def output_tokens(self) -> int:
        return self.image_output + self.text_output

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def _common(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"text_tokens": self.text_input, "image_tokens": self.image_input},
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }

    def images_api(self) -> dict[str, Any]:
        """`ImagesResponse.usage` (§2.1) and `tool_usage.image_gen` (§2.3): with output_tokens_details."""
        details = {"image_tokens": self.image_output, "text_tokens": self.text_output}
        return {**self._common(), "output_tokens_details": details}

    def stream_completed(self) -> dict[str, Any]:
        """The smaller usage of `image_generation.completed` / `image_edit.completed` (§2.2)."""
        return self._common()

    def record(self) -> dict[str, int]:
        """Flat token fields for `Simulator.served`."""
        return {
            "text_input_tokens": self.text_input,
            "image_input_tokens": self.image_input,
            "image_output_tokens": self.image_output,
            "text_output_tokens": self.text_output,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "total_tokens": self.total_tokens,
        }


NO_USAGE_RECORD: dict[str, int | None] = dict.fromkeys(ImageUsage(0, 0, 0).record())
