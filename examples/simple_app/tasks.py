"""Offloaded tasks of the example app (a Django-style ``tasks`` module)."""

from __future__ import annotations

import json
import os
import time

from uwsgi_mules import Farm, Mule, mule_offload


def _note(task: str, value: object) -> None:
    """Append what ran where to ``$EXAMPLE_OUTPUT_DIR/done.jsonl`` (if set)."""
    directory = os.environ.get("EXAMPLE_OUTPUT_DIR")
    line = {"task": task, "value": value, "mule": Mule.get_current_id(), "at": time.time()}
    if directory:
        with open(os.path.join(directory, "done.jsonl"), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


@Mule(1).offload()
def resize_image(image_id: int) -> None:
    """Runs on mule 1."""
    _note("resize_image", image_id)


@Farm("reports").offload()
def build_report(report_id: int) -> None:
    """Runs on a free mule of farm ``reports`` (mules 1 and 2)."""
    _note("build_report", report_id)


@mule_offload("mail")
def send_email(address: str) -> None:
    """Runs on farm ``mail``: the signal-only mule 3."""
    _note("send_email", address)
