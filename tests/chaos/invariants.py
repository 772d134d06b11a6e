"""The invariants of a chaos run, checked from the ledger, the dead tasks and the log.

For every call a sender saw accepted:

- it ran to completion at least once, or it is a listed dead task, or its
  loss is one the docs name (docs/delivery.md): the task in flight when its
  mule died, named in the log ("died while running ..."), or a call queued
  for a signal-only mule at a full reload or stop without the C plugin;
- it never started before its due time;
- it completed at most once, except when the mule that completed it was
  killed by a fault right after (at-least-once under ``retries``: counted);

and the mules respawned no more often than the injected faults explain.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from .ledger import DONE, Entry
from .schedule import Call

#: seconds of clock noise a due time is compared with
EARLY_TOLERANCE = 0.001
#: what a respawned mule logs about the task its predecessor died in
DIED_WHILE_RUNNING = "died while running"
#: ... when it had no retry left
TASK_LOST = "the task is lost"


@dataclass
class Outcome:
    """What the driver saw: sends, the ledger, dead tasks, log, and what its faults explain."""

    accepted: dict[str, float]            #: call id -> due time, for every accepted call
    refused: dict[str, str]               #: call id -> why the sender refused it
    entries: list[Entry]
    dead_text: str                        #: the dead-task listing (call descriptions)
    log_lines: list[str]
    respawns: int = 0
    explained_respawns: int = 0
    killed_pids: set[int] = field(default_factory=set)
    #: a full reload or a stop happened without the C plugin (signal-only mules drop their queue)
    signal_queue_dropped: bool = False
    #: exceptions that escaped the mule side (on the fake: out of run_pending; a real mule dies of them)
    loop_errors: list[str] = field(default_factory=list)
    #: what the driver saw go wrong outside the ledger (a send that hung, a wrong message of a command)
    problems: list[str] = field(default_factory=list)
    #: calls the faults sent (the harakiri fault's long task)
    extra_calls: list[Call] = field(default_factory=list)


@dataclass
class Report:
    sent: int = 0
    refused: int = 0
    executed: int = 0
    lost: int = 0
    duplicated: int = 0
    duplicated_explained: int = 0
    early: int = 0
    dead: int = 0
    dropped_named: int = 0
    dropped_signal_only: int = 0
    respawns: int = 0
    explained_respawns: int = 0
    violations: list[str] = field(default_factory=list)
    #: why sends were refused (the first few: a refusal is an exception to the sender, not a loss)
    refusals: list[str] = field(default_factory=list)

    def figures(self) -> str:
        why = f"; refused: {'; '.join(self.refusals)}" if self.refusals else ""
        return (f"sent {self.sent}, refused {self.refused}, executed {self.executed}, lost {self.lost}, "
                f"duplicated {self.duplicated} (+{self.duplicated_explained} explained), early {self.early}, "
                f"dead {self.dead}, dropped and named {self.dropped_named}, dropped for a signal-only mule "
                f"{self.dropped_signal_only}, respawns {self.respawns} (faults explain {self.explained_respawns}){why}")


def check(calls: list[Call], outcome: Outcome) -> Report:
    """The report of one schedule: figures and every violation found."""
    by_id: dict[str, list[Entry]] = defaultdict(list)
    for entry in outcome.entries:
        by_id[entry.call_id].append(entry)
    named = _named_in_log(outcome.log_lines)
    report = Report(sent=len(calls), refused=len(outcome.refused),
                    respawns=outcome.respawns, explained_respawns=outcome.explained_respawns,
                    violations=list(outcome.problems),
                    refusals=sorted(set(outcome.refused.values()))[:3])
    report.sent += len(outcome.extra_calls)
    for call in [*calls, *outcome.extra_calls]:
        if call.call_id in outcome.accepted:
            _check_call(call, outcome.accepted[call.call_id], by_id[call.call_id], outcome, named, report)
    for error in outcome.loop_errors:
        report.violations.append(f"the mule side raised {error[:300]} (a real mule dies of it)")
    if report.dropped_named > outcome.explained_respawns:
        report.violations.append(f"{report.dropped_named} task(s) named lost with their mule, but the faults "
                                 f"explain {outcome.explained_respawns} mule death(s)")
    if outcome.respawns > outcome.explained_respawns:
        report.violations.append(f"mules respawned {outcome.respawns} times; the faults explain "
                                 f"{outcome.explained_respawns}")
    return report


def _named_in_log(lines: list[str]) -> dict[str, list[str]]:
    """call id -> the log lines naming it (call ids look like ``s<seed>c<n>x``)."""
    found: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        start = line.find("'s")
        while start != -1:
            end = line.find("x'", start)
            if end == -1:
                break
            found[line[start + 1:end + 1]].append(line)
            start = line.find("'s", end)
    return found


def _check_call(call: Call, due: float, runs: list[Entry], outcome: Outcome, named: dict[str, list[str]],
                report: Report) -> None:
    done = [entry for entry in runs if entry.event == DONE]
    report.executed += len(done)
    what = f"{call.call_id} ({call.kind}, {call.how}{f', fails {call.fail_times}' if call.fail_times else ''})"
    if runs and min(entry.at for entry in runs) < due - EARLY_TOLERANCE:
        report.early += 1
        first = min(entry.at for entry in runs)
        report.violations.append(f"early: {what} started {due - first:.3f}s before its due time")
    if len(done) > 1:
        if done[0].pid in outcome.killed_pids:
            report.duplicated_explained += 1
        else:
            report.duplicated += 1
            report.violations.append(f"duplicated: {what} completed {len(done)} times "
                                     f"(attempts {[e.attempt for e in done]}, pids {[e.pid for e in done]})")
    if done:
        return
    if call.call_id in outcome.dead_text:
        report.dead += 1
    elif any(DIED_WHILE_RUNNING in line and TASK_LOST in line for line in named.get(call.call_id, ())):
        report.dropped_named += 1
    elif call.kind == "signal" and outcome.signal_queue_dropped:
        report.dropped_signal_only += 1
    else:
        report.lost += 1
        lines = named.get(call.call_id, [])
        said = f"; the log says: {lines[-1][:300]}" if lines else "; no log line names it"
        report.violations.append(f"lost: {what} accepted, {len(runs)} attempt(s) started, never completed, "
                                 f"not a dead task{said}")
