"""The model-backed generator, with a scripted backend: prompts, parsing, retries, dedup."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from mminstruct.config import config_from_dict
from mminstruct.generate.backends import Completion, Request
from mminstruct.generate.model import ModelGenerator, normalize_question
from mminstruct.records import ImageRecord, ObjectBox

DOG = ObjectBox("dog", 10, 10, 50, 40)
GOOD = {
    "conversation": "Question: What animal is this?\nAnswer: It is a dog.\n===\n"
    "Question: Is it sleeping?\nAnswer: No, it is running across the grass.",
    "detail": "A brown dog runs across a green lawn on a sunny day, its ears flying.",
    "reasoning": "Question: Why might the dog be running?\nAnswer: The open lawn and the "
    "dog's posture suggest it is playing, perhaps chasing something thrown for it.",
}


class ScriptedBackend:
    """Answers each request from a script keyed by task; records what it was asked."""

    name = "scripted"
    model = "scripted-model"

    def __init__(self, script: dict[str, list[str]]):
        self.script = {task: list(texts) for task, texts in script.items()}
        self.requests: list[Request] = []
        self.tasks: dict[str, str] = {}  # system message -> task, set by make()

    def complete(self, requests: Sequence[Request]) -> list[Completion]:
        self.requests += requests
        out = []
        for request in requests:
            task = self.tasks[request.messages[0]["content"]]
            text = self.script[task].pop(0) if len(self.script[task]) > 1 else self.script[task][0]
            finish = "error" if text == "<error>" else "stop"
            out.append(
                Completion(
                    "" if finish == "error" else text,
                    finish,
                    10,
                    20,
                    "server said no" if finish == "error" else None,
                )
            )
        return out

    def count_tokens(self, messages) -> int:
        return 10


def make(script: dict[str, list[str]], **generator) -> tuple[ModelGenerator, ScriptedBackend]:
    raw = {
        "sources": [{"kind": "coco", "images": "x", "instances": "y.json"}],
        "generator": {"backend": "openai", "model": "m", **generator},
    }
    backend = ScriptedBackend(script)
    generator = ModelGenerator(config_from_dict(raw), backend=backend)
    backend.tasks = {t.system: name for name, t in generator.templates.items()}
    return generator, backend


def record(captions=("A dog running on grass.",), objects=(DOG,)) -> ImageRecord:
    return ImageRecord(
        "t", 7, "a.jpg", None, 100, 80, tuple(captions), tuple(objects), ("dog", "cat")
    )


def test_kept_instructions_carry_how_they_were_made():
    generator, backend = make({t: [GOOD[t]] for t in GOOD})
    (result,) = generator.generate([record()])
    assert [i.task for i in result.instructions] == ["conversation", "detail", "reasoning"]
    assert result.rejections == [] and result.tokens == 60
    conversation, detail, _ = result.instructions
    assert conversation.turns[0] == ("What animal is this?", "It is a dog.")
    assert detail.turns[0][0] in generator.questions and detail.turns[0][1] == GOOD["detail"]
    stamp = conversation.generator
    assert stamp["backend"] == "scripted" and stamp["model"] == "scripted-model"
    assert stamp["template"] == "conversation.yaml" and len(stamp["template_sha256"]) == 16
    assert (
        stamp["temperature"],
        stamp["top_p"],
        stamp["prompt_tokens"],
        stamp["completion_tokens"],
    ) == (0.7, 0.95, 10, 20)
    assert stamp["seed"] == backend.requests[0].seed


def test_boxes_follow_the_task_settings():
    generator, backend = make({t: [GOOD[t]] for t in GOOD})
    generator.generate([record()])
    by_task = {
        backend.tasks[r.messages[0]["content"]]: r.messages[-1]["content"] for r in backend.requests
    }
    assert "dog: [" not in by_task["conversation"]  # captions only, as LLaVA did
    assert "dog: [0.1, 0.125, 0.6, 0.625]" in by_task["detail"]
    assert "dog: [" in by_task["reasoning"]


def test_rejected_completion_is_retried_once_with_a_new_seed():
    script = {
        **{t: [GOOD[t]] for t in GOOD},
        "reasoning": ["I'm sorry, but as an AI I cannot see images.", GOOD["reasoning"]],
    }
    generator, backend = make(script)
    (result,) = generator.generate([record()])
    assert [i.task for i in result.instructions] == ["conversation", "detail", "reasoning"]
    seeds = [
        r.seed for r in backend.requests if backend.tasks[r.messages[0]["content"]] == "reasoning"
    ]
    assert len(seeds) == 2 and seeds[0] != seeds[1]
    assert result.instructions[2].generator["attempt"] == 1
    assert result.tokens == 4 * 20  # the failed first attempt's tokens count too


def test_twice_rejected_keeps_the_reason_and_the_raw_completion():
    refusal = "I'm sorry, but as an AI I cannot see images."
    script = {**{t: [GOOD[t]] for t in GOOD}, "reasoning": [refusal, refusal]}
    generator, _ = make(script)
    (result,) = generator.generate([record()])
    (rejection,) = result.rejections
    assert (rejection.task, rejection.reason, rejection.raw) == ("reasoning", "refusal", refusal)


def test_no_retry_when_disabled_and_backend_errors_are_rejections():
    script = {**{t: [GOOD[t]] for t in GOOD}, "detail": ["<error>"]}
    generator, backend = make(script, retry=False)
    (result,) = generator.generate([record()])
    assert len(backend.requests) == 3
    (rejection,) = result.rejections
    assert rejection.reason == "backend_error" and "server said no" in rejection.detail


def test_repeated_questions_are_dropped_and_counted():
    repeat = "Question: What animal is this?\nAnswer: A dog.\n===\nQuestion: what animal is THIS\nAnswer: Still a dog."
    generator, _ = make({**{t: [GOOD[t]] for t in GOOD}, "conversation": [repeat]})
    (result,) = generator.generate([record()])
    assert result.instructions[0].turns == (("What animal is this?", "A dog."),)
    assert [r.reason for r in result.rejections] == ["duplicate"]
    assert normalize_question("What animal, is THIS?") == "what animal is this"


def test_samples_per_task_have_their_own_seeds():
    generator, backend = make({t: [GOOD[t]] for t in GOOD}, samples_per_task=2)
    (result,) = generator.generate([record()])
    assert len(backend.requests) == 6 and len({r.seed for r in backend.requests}) == 6
    # the same conversation twice: its questions repeat, so the second copy is dropped
    assert [i.task for i in result.instructions].count("detail") == 2
    assert any(r.reason == "duplicate" for r in result.rejections)


def test_dataset_dedup_is_unit_local():
    generator, _ = make({t: [GOOD[t]] for t in GOOD}, dedup_dataset=True)
    first, second = generator.generate([record(), record()])
    assert len(first.instructions) == 3 and [i.task for i in second.instructions] == ["detail"]
    generator.start_unit()
    (third,) = generator.generate([record()])
    assert len(third.instructions) == 3


def test_nothing_to_write_from():
    generator, backend = make({t: [GOOD[t]] for t in GOOD})
    (result,) = generator.generate([record(captions=(), objects=())])
    assert backend.requests == []
    assert {r.reason for r in result.rejections} == {"insufficient_annotations"}


@pytest.mark.parametrize(
    "bad",
    ["", "Question: Where?\nAnswer: In the top left of the bounding box [0.1, 0.2, 0.3, 0.4]."],
)
def test_bad_first_attempts_do_not_leak_into_kept_output(bad):
    generator, _ = make(
        {**{t: [GOOD[t]] for t in GOOD}, "conversation": [bad, GOOD["conversation"]]}
    )
    (result,) = generator.generate([record()])
    assert result.instructions[0].turns[0][0] == "What animal is this?"
