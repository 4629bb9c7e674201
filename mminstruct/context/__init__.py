"""Context: an image record -> the text a generator reads (LLaVA's symbolic context).

Takes an `ImageRecord`; gives captions, then `category: [x1, y1, x2, y2]` lines, then relations,
some derived from the boxes. Start reading at `render.render_context`; `spatial` derives relations.
"""

from mminstruct.context.render import (
    box_line,
    context_relations,
    object_labels,
    render_context,
    visible_indices,
    visible_objects,
)
from mminstruct.context.spatial import PREDICATES, derive_relation, derive_relations

__all__ = [
    "PREDICATES",
    "box_line",
    "context_relations",
    "derive_relation",
    "derive_relations",
    "object_labels",
    "render_context",
    "visible_indices",
    "visible_objects",
]
