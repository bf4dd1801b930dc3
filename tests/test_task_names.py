"""Task names: each is named once in ``papermail.task_names``, and every name used is registered."""

import ast

from papermail import celery_app, task_names
from tests.conftest import SRC_DIR

# Calls whose first argument is a task name.
QUEUEING_CALLS = {"enqueue_after_commit": 1, "send_task": 0, "shared_task": None}


def _named_tasks() -> dict[str, str]:
    return {name: value for name, value in vars(task_names).items() if name.isupper()}


def test_every_named_task_is_registered_and_every_registered_task_is_named(settings):
    app = celery_app.create_celery(settings)
    app.loader.import_default_modules()
    registered = {name for name in app.tasks if name.startswith("papermail.")}
    assert set(_named_tasks().values()) == registered


def test_every_scheduled_task_is_registered(settings):
    app = celery_app.create_celery(settings)
    app.loader.import_default_modules()
    for entry, spec in celery_app.beat_schedule().items():
        assert spec["task"] in app.tasks, entry


def test_nothing_under_src_queues_or_registers_a_task_by_a_loose_string():
    loose = []
    for path in SRC_DIR.rglob("*.py"):
        if path.name == "task_names.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name not in QUEUEING_CALLS:
                continue
            position = QUEUEING_CALLS[name]
            arguments = [kw.value for kw in node.keywords if kw.arg == "name"]
            if position is not None and len(node.args) > position:
                arguments.append(node.args[position])
            for argument in arguments:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    loose.append(f"{path.relative_to(SRC_DIR)}:{node.lineno} {argument.value}")
            if name == "shared_task" and not arguments:
                loose.append(f"{path.relative_to(SRC_DIR)}:{node.lineno} a task without a name")
    assert loose == []
