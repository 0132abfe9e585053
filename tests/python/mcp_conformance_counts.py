"""Counts of the MCP conformance suite's server runs, as scripts/mcp-conformance prints them.

    python mcp_conformance_counts.py DIR VERSION_01 VERSION_02

DIR holds one log per run, named TARGET-LINE-WHAT.log (upstream-0.1-all.log,
gateway-0.2-2026-07-28.log, ...). From each log's summary: scenarios passed of those run, checks
passed of those run, and for `--requirements` runs the scenarios the requirement set does not
score (extensions, pending) apart. Exits 1 when the reference server (target `upstream`) fails a
scored check, since every count of the gateway is measured against it.
"""

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

SCENARIO = re.compile(r"^([✓✗]) (\S+): (\d+) passed, (\d+) failed\s*$")
NOT_SCORED = re.compile(r"^\s+[✓✗] (\S+) \(([\w-]+)\)\s*$")


@dataclass
class Scenario:
    name: str
    passed: int
    failed: int

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass
class Run:
    scored: list[Scenario] = field(default_factory=list)
    not_scored: list[Scenario] = field(default_factory=list)


def parse(text: str) -> Run:
    """The scenarios of one run's summary, the scored ones apart from the rest."""
    if "=== SUMMARY ===" not in text:
        raise ValueError("no summary in the suite's output")
    summary = text.split("=== SUMMARY ===", 1)[1]
    scenarios, unscored = [], set()
    for line in summary.splitlines():
        if m := SCENARIO.match(line):
            scenarios.append(Scenario(m[2], int(m[3]), int(m[4])))
        elif m := NOT_SCORED.match(line):
            unscored.add(m[1])
    run = Run()
    for s in scenarios:
        (run.not_scored if s.name in unscored else run.scored).append(s)
    return run


def line(run: Run) -> str:
    s = run.scored
    checks = sum(x.passed for x in s), sum(x.passed + x.failed for x in s)
    out = f"scenarios {sum(x.ok for x in s)}/{len(s)}, checks {checks[0]}/{checks[1]}"
    if run.not_scored:
        n = run.not_scored
        out += f"; not scored: scenarios {sum(x.ok for x in n)}/{len(n)}"
    return out


def main() -> int:
    root, v01, v02 = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    runs = [
        ("0.1-all", f"2025-11-25  {v01} --suite all"),
        ("0.2-2025-11-25", f"2025-11-25  {v02} --requirements 2025-11-25"),
        ("0.2-2026-07-28", f"2026-07-28  {v02} --requirements 2026-07-28"),
    ]
    status = 0
    for target, title in (("upstream", "the reference server directly"), ("gateway", "the gateway's /mcp, the reference server behind it")):
        print(f"== {title}")
        for key, label in runs:
            log = root / f"{target}-{key}.log"
            try:
                run = parse(log.read_text())
            except (OSError, ValueError) as e:
                print(f"  {label}: no result ({e}); the log: {log}")
                status = 1
                continue
            print(f"  {label}: {line(run)}")
            failing = [s.name for s in run.scored if not s.ok]
            if failing:
                print(f"    failing: {', '.join(failing)}")
            if target == "upstream" and failing:
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
