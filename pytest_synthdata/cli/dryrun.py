"""``--dry-run``: the plan of a record dataset, as the command prints it (the plan itself is
:mod:`pytest_synthdata.dryrun`'s)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from .inputs import endpoint


def print_plan(
    spec: Any,
    settings: Any,
    env: Mapping[str, str],
    prices: tuple[float, float] | None,
    stdout: TextIO,
) -> None:
    """Print the plan and its estimated tokens (and cost); send nothing."""
    from ..dryrun import cost_text, plan_records

    plan = plan_records(spec, settings)
    lines = [
        "dry run: nothing was sent",
        f"{spec.n} {spec.model_name} record(s) from {settings.model!r} at "
        f"{endpoint(settings, env)}, structured mode {plan.mode}",
        f"planned requests: {plan.requests} (batches of {plan.batch_size}, {plan.waves} "
        f"wave(s), at most {plan.in_flight} in flight), plus at most {plan.most_reasks} "
        "re-ask(s) if answers are invalid",
        f"estimated tokens: {plan.prompt_tokens} prompt + {plan.completion_tokens} completion "
        f"= {plan.total_tokens} (max_tokens reserved: {plan.reserved_tokens})",
    ]
    if prices is not None:
        lines.append(
            f"estimated cost: {cost_text(plan.prompt_tokens, plan.completion_tokens, prices)}"
        )
    stdout.write("\n".join(lines) + "\n")
