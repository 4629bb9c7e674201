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

import functools
import random
from collections.abc import Sequence

from mminstruct.config import Config, ContextConfig, TasksConfig
from mminstruct.context import context_relations
from mminstruct.generate.rule_based.captions import clean_caption, mention_terms, mentioned
from mminstruct.generate.rule_based.choice import _choice
from mminstruct.generate.rule_based.compositional import _compositional
from mminstruct.generate.rule_based.conversation import _conversation
from mminstruct.generate.rule_based.detail import MAX_INVENTORY, _detail, inventory
from mminstruct.generate.rule_based.grounding_regions import _regions
from mminstruct.generate.rule_based.phrasing import (
    POOLS,
    TEMPLATE_FILE,
    Phrasings,
    _Say,
    load_phrasings,
    render,
    templates_dir,
)
from mminstruct.generate.rule_based.reasoning import SIDE_GAP, _reasoning, ratio_words
from mminstruct.generate.rule_based.referring import Referent, llava_box, referents
from mminstruct.generate.rule_based.relations import relation_facts
from mminstruct.generate.rule_based.scene import (
    BIGGEST_MARGIN,
    LARGER_RATIO,
    MIN_PROMINENT,
    Scene,
    absent_categories,
    biggest_category,
    describe_scene,
    region,
    some,
)
from mminstruct.generate.rule_based.short_vqa import _short_vqa
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
    "Referent",
    "RuleBasedGenerator",
    "Scene",
    "absent_categories",
    "biggest_category",
    "clean_caption",
    "describe_scene",
    "generate_instructions",
    "inventory",
    "llava_box",
    "load_phrasings",
    "mention_terms",
    "mentioned",
    "ratio_words",
    "referents",
    "region",
    "relation_facts",
    "render",
    "some",
    "templates_dir",
]

_TASKS = {"conversation": _conversation, "detail": _detail, "reasoning": _reasoning}
# LLaVA-1.5's academic task families, written from annotations alone (off by default).
_TASKS |= {
    "regions": _regions,
    "short_vqa": _short_vqa,
    "choice": _choice,
    "compositional": _compositional,
}
_FAMILY_NEEDS = {
    "regions": "an object that a phrase can pick out alone, a region description or a "
    "referring expression",
    "short_vqa": "an exact count, a colour, an annotated relation or a lone object",
    "choice": "a COCO category with enough unseen categories of its supercategory to offer",
    "compositional": "object categories present or certainly absent",
}


def _limits(tasks: TasksConfig) -> dict[str, int | None]:
    """Each enabled task's limit on question/answer pairs; None when it is disabled."""
    return {
        "conversation": tasks.conversation.turns if tasks.conversation.enabled else None,
        "detail": 1 if tasks.detail.enabled else None,
        "reasoning": tasks.reasoning.questions if tasks.reasoning.enabled else None,
    } | {
        name: family.questions if family.enabled else None
        for name, family in (
            ("regions", tasks.regions),
            ("short_vqa", tasks.short_vqa),
            ("choice", tasks.choice),
            ("compositional", tasks.compositional),
        )
    }


def _task_function(task: str, tasks: TasksConfig):
    """The function writing `task`; multiple choice also takes its number of options, and
    both it and region grounding the frame their boxes are fractions of."""
    square = tasks.regions.box_frame == "square"
    if task == "choice":
        return functools.partial(_choice, options=tasks.choice.options, square=square)
    if task == "regions":
        return functools.partial(_regions, square=square)
    return _TASKS[task]


def _missing(task: str, scene: Scene) -> str:
    if task in _FAMILY_NEEDS:
        return f"{task} needs {_FAMILY_NEEDS[task]}; this image has none"
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
        turns = _task_function(task, tasks)(record, scene, _Say(phrasings, rng), rng, limit)
        if turns:
            result.instructions.append(_instruction(task, turns, stamp))
        else:
            result.rejections.append(_rejection(record, task, _missing(task, scene)))
    return result


def _instruction(task: str, turns: list[tuple[str, str]], stamp: dict) -> Instruction:
    """The task's turns as plain pairs, the stamp with each turn's question type (a family
    without types, such as `detail`, counts under its own name)."""
    kinds = [getattr(turn, "kind", task) for turn in turns]
    return Instruction(
        task=task,
        turns=tuple((question, answer) for question, answer in turns),
        generator={**stamp, "question_types": kinds},
    )


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
