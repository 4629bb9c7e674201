"""The rule-based generator: conversations, descriptions and reasoning from annotations alone.

Takes `ImageRecord`s and the wording in `rule_based.yaml`; gives one `Generated` per record.
Start at `generate_instructions` here, then a task module: `conversation`, `detail`, `reasoning`
(with `relations`); `scene` reads the boxes, `phrasing` the wording file, `captions` the captions.

Every answer is true by construction: counts, positions and sizes are read off the boxes,
a confident "no" is only said for a category the annotation is exhaustive for and no caption
mentions, and descriptions quote the captions. The wording comes from `rule_based.yaml`
(shipped in `templates/`, or the folder named by `generator.templates`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from mminstruct.config import Config, ContextConfig, TasksConfig
from mminstruct.context import context_relations
from mminstruct.generate.rule_based.captions import clean_caption, mention_terms, mentioned
from mminstruct.generate.rule_based.conversation import _conversation
from mminstruct.generate.rule_based.detail import MAX_INVENTORY, _detail, inventory
from mminstruct.generate.rule_based.phrasing import (
    POOLS,
    TEMPLATE_FILE,
    Phrasings,
    _Say,
    load_phrasings,
    render,
    templates_dir,
)
from mminstruct.generate.rule_based.reasoning import LARGER_RATIO, SIDE_GAP, _reasoning, ratio_words
from mminstruct.generate.rule_based.relations import relation_facts
from mminstruct.generate.rule_based.scene import (
    BIGGEST_MARGIN,
    MIN_PROMINENT,
    Scene,
    absent_categories,
    biggest_category,
    describe_scene,
    region,
    some,
)
from mminstruct.keys import image_seed
from mminstruct.records import Generated, ImageRecord, Instruction, Rejection

__all__ = [
    "BIGGEST_MARGIN",
    "LARGER_RATIO",
    "MAX_INVENTORY",
    "MIN_PROMINENT",
    "POOLS",
    "SIDE_GAP",
    "TEMPLATE_FILE",
    "Phrasings",
    "RuleBasedGenerator",
    "Scene",
    "absent_categories",
    "biggest_category",
    "clean_caption",
    "describe_scene",
    "generate_instructions",
    "inventory",
    "load_phrasings",
    "mention_terms",
    "mentioned",
    "ratio_words",
    "region",
    "relation_facts",
    "render",
    "some",
    "templates_dir",
]

_TASKS = {"conversation": _conversation, "detail": _detail, "reasoning": _reasoning}


def _limits(tasks: TasksConfig) -> dict[str, int | None]:
    """Each enabled task's limit on question/answer pairs; None when it is disabled."""
    return {
        "conversation": tasks.conversation.turns if tasks.conversation.enabled else None,
        "detail": 1 if tasks.detail.enabled else None,
        "reasoning": tasks.reasoning.questions if tasks.reasoning.enabled else None,
    }


def _missing(task: str, scene: Scene) -> str:
    if task == "reasoning":
        found = ", ".join(scene.countable) or "none"
        return (
            f"reasoning needs two object categories without crowd boxes to compare; found: {found}"
        )
    return f"{task} needs captions or object boxes; this image has neither"


def generate_instructions(
    record: ImageRecord,
    tasks: TasksConfig,
    phrasings: Phrasings,
    seed: int,
    context: ContextConfig | None = None,
) -> Generated:
    """All enabled tasks for one image, or a rejection per task that cannot be written.

    `seed` is the image's own seed (`image_seed`); each task draws from its own RNG, so
    turning one task off does not change the others.
    """
    relations = context_relations(record, context or ContextConfig()) if record.objects else ()
    scene = describe_scene(record, relations)
    stamp = {"backend": "template", "template": phrasings.source}
    stamp |= {"template_sha256": phrasings.sha256, "seed": seed}
    result = Generated()
    for task, limit in _limits(tasks).items():
        if limit is None:
            continue
        rng = random.Random(f"{seed}:{task}")
        turns = _TASKS[task](record, scene, _Say(phrasings, rng), rng, limit)
        if turns:
            result.instructions.append(
                Instruction(task=task, turns=tuple(turns), generator=dict(stamp))
            )
        else:
            result.rejections.append(_rejection(record, task, _missing(task, scene)))
    return result


def _rejection(record: ImageRecord, task: str, detail: str) -> Rejection:
    return Rejection(
        reason="insufficient_annotations",
        detail=detail,
        dataset=record.dataset,
        image_id=record.image_id,
        task=task,
    )


class RuleBasedGenerator:
    """The `template` backend: writes every task from the annotations, with no model."""

    def __init__(self, config: Config):
        self.tasks = config.tasks
        self.context = config.context
        self.base_seed = config.generator.seed
        self.phrasings = load_phrasings(templates_dir(config.generator.templates))

    def start_unit(self) -> None:
        """Nothing to reset: each image's output depends on that image alone."""

    def generate(
        self, batch: Sequence[ImageRecord], images: Sequence[bytes] | None = None
    ) -> list[Generated]:
        """One `Generated` per record, in the same order."""
        return [
            generate_instructions(
                record,
                self.tasks,
                self.phrasings,
                image_seed(self.base_seed, record.dataset, record.image_id),
                self.context,
            )
            for record in batch
        ]
