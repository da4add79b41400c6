"""The rules of ``train.stages`` that span more than one key.

Each stage's own keys, types and bounds are the schema's
(:data:`basicattn.config.schema.STAGE_SECTION`); what is checked here is what
no single key can say: the stage ends increase and the last one reaches
``train.total_iter``, and the losses a stage names exist. The option
validator runs both, so :class:`~basicattn.engine.stage_hook.MultiStageHook`
receives stages that are valid.
"""

from typing import List, Optional, Sequence

__all__ = ['stage_order_problems']


def stage_order_problems(
    stages: Sequence[dict], total_iter: Optional[int], loss_names: Sequence[str]
) -> List[str]:
    """The cross-key problems of a stage list whose stages are each valid.

    Args:
        stages (Sequence[dict]): ``train.stages``, each checked by the schema.
        total_iter (int, optional): ``train.total_iter``; the last stage must reach it.
        loss_names (Sequence[str]): The names in ``train.losses``.

    Returns:
        list[str]: ``'<index>.<key>: message'`` strings, empty when valid.
    """
    problems = []
    previous = 0
    for i, stage in enumerate(stages):
        until = stage['until_iter']
        if until <= previous:
            problems.append(
                f'{i}.until_iter: {until} must be larger than the previous stage end {previous}'
            )
        else:
            previous = until
        for name in stage.get('losses') or []:
            if name not in loss_names:
                problems.append(
                    f'{i}.losses: {name!r} is not in train.losses ({", ".join(sorted(loss_names))})'
                )
        if stage.get('losses') == []:
            problems.append(f'{i}.losses: a stage needs at least one loss')
    if total_iter is not None and previous and previous < total_iter:
        problems.append(
            f'{len(stages) - 1}.until_iter: the last stage ends at '
            f'{previous} but train.total_iter is {total_iter}'
        )
    return problems
