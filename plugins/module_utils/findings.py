# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The paper's conclusions, judged on the summary rows of one run.

Each conclusion of the paper's slides is a :class:`Finding`: a statement in
this project's words, the test that decides it, and a function that applies
the test to the summary rows of a run (:func:`results.aggregate`). The result
of :func:`judge_all` is one dict per finding, in the paper's order, with

* ``verdict``: ``reproduced``, ``not reproduced`` or ``not measurable here``;
* ``strength``: ``firm`` when every comparison that decided it had at least
  two ok repetitions on each side (interquartile ranges compared),
  ``tentative`` when a side had a single repetition (single values compared:
  there is no spread to say the difference is real), None when not measurable;
* ``numbers``: one line per comparison made, with the medians and their
  spread and what the comparison showed;
* ``not_judged``: why the parts that could not be compared were left out (a
  location ``unsupported`` with the kernel's reason, an experiment or a
  location that was not in the run's matrix, a single N or rate);
* ``test``: how the numbers decide.

How the comparisons decide
==========================

A group's value is its median over the ok repetitions, its spread the
interquartile range (``q1``..``q3``; one value when there is one repetition).
"A above B" holds when A's ``q1`` exceeds B's ``q3`` (the IQRs do not
overlap); overlapping IQRs show no difference. A ratio A/B ranges from
``q1(A)/q3(B)`` to ``q3(A)/q1(B)``; two ratios are compared by their ranges
like two groups.

A finding is ``reproduced`` when every comparison it could make agrees with
it (for the findings that say "can" or "may", when at least one comparison
shows it), ``not reproduced`` when a comparison could be made and one
disagrees (or, for "can"/"may", none shows it), and ``not measurable here``
when no comparison could be made.

Two throughputs where both groups processed the whole offered rate (at least
:data:`OFFERED_SHARE` of it) are not compared: the generator, not the
location, set them.

Zero-loss throughput (``zero_loss_pps`` of an experiment ``zero_loss``) is
used beside the overload throughput where a run has it.
"""
from __future__ import absolute_import, division, print_function
__metaclass__ = type

import collections
import math
import re

from ansible_collections.xdplab.offload.plugins.module_utils import figures as fg
from ansible_collections.xdplab.offload.plugins.module_utils import results as res

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURABLE = "not measurable here"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_MEASURABLE)
FIRM = "firm"
TENTATIVE = "tentative"

# Outcomes of one comparison.
HOLDS = "holds"
FAILS = "fails"
UNDECIDED = "undecided"

# Locations from the least to the most offloaded (user space first); the steps
# compared are the adjacent ones measured, plus the extra (less, more) pairs:
# generic XDP runs after the kernel built an skb, the driver before.
BAREMETAL_CHAIN = ("afxdp", "driver", "offload")
BAREMETAL_EXTRA = (("generic", "driver"),)
VM_CHAIN = ("vm_afxdp", "vm_driver", "host_driver", "nic")
# A throughput this close to the offered rate was limited by the generator.
OFFERED_SHARE = 0.99
# "Highly influenced": the median RTT moves by at least this factor.
MARKED_FACTOR = 1.5
# "Most latency before the driver": the NIC's RTT exceeds this share of the driver's.
MOST = 0.5

UNITS = {"processed_pps": "pps", "zero_loss_pps": "pps", "rtt_us_p50": "µs", "rtt_us_p99": "µs",
         "cpu_host_share": "%", "cpu_vm_share": "%"}
NAMES = {"processed_pps": "throughput", "zero_loss_pps": "zero-loss throughput", "rtt_us_p50": "p50 RTT",
         "rtt_us_p99": "p99 RTT", "cpu_host_share": "host CPU", "cpu_vm_share": "VM CPU"}


# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

def sig(value, digits=3):
    """``value`` with ``digits`` significant digits and no exponent; ``-`` for None/NaN."""
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return "-"
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) < 1e-3 or abs(value) >= 1e15:
        return "%.*g" % (digits, value)
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(value)))))
    return "%.*f" % (decimals, value)


def scale(value, unit):
    """(factor, unit text) that shows ``value`` in ``unit`` with a readable prefix (pps -> kpps, Mpps)."""
    if unit == "pps":
        for factor, prefix in ((1e6, "M"), (1e3, "k")):
            if abs(value) >= factor:
                return 1.0 / factor, prefix + "pps"
    return 1.0, unit


Spread = collections.namedtuple("Spread", "median q1 q3 reps")


def spread(row, quantity):
    """Median, quartiles and ok repetitions of ``quantity`` in a summary row; None without a median."""
    median = res._num(row.get(quantity + "_median"))
    if median is None:
        return None
    q1, q3 = res._num(row.get(quantity + "_q1")), res._num(row.get(quantity + "_q3"))
    if q1 is None or q3 is None:
        q1 = q3 = median
    return Spread(median, q1, q3, int(row.get("repetitions") or 0))


def ratio(a, b):
    """The ratio a/b with its range from the quartiles; None when b can be zero."""
    if b.q1 <= 0:
        return None
    return Spread(a.median / b.median, a.q1 / b.q3, a.q3 / b.q1, min(a.reps, b.reps))


def above(a, b):
    """True when a's IQR lies wholly above b's, False when wholly below, None when they overlap."""
    if a.q1 > b.q3:
        return True
    if a.q3 < b.q1:
        return False
    return None


def tentative(*spreads):
    return any(s.reps < 2 for s in spreads)


def apart(weak, what="IQRs"):
    """How a clear ordering was decided: by spreads apart, or by single values (no spread)."""
    return "single values ordered" if weak else "%s apart" % what


def describe(value, unit):
    """``12.0 Mpps (IQR 11.5-12.5, 3 reps)``, or ``(1 rep)`` without a spread."""
    factor, text = scale(value.median, unit)
    median = "%s %s" % (sig(value.median * factor), text)
    if value.reps < 2:
        return median + " (1 rep)"
    return "%s (IQR %s-%s, %d reps)" % (median, sig(value.q1 * factor), sig(value.q3 * factor), value.reps)


def step(outcome, text, weak):
    return {"outcome": outcome, "text": text, "tentative": bool(weak)}


# ---------------------------------------------------------------------------
# Finding rows in the summary
# ---------------------------------------------------------------------------

SETTING_KEYS = ("program", "n", "size", "rate")


def rows_of(rows, experiment, program=None):
    return [r for r in rows if r.get("experiment") == experiment and (program is None or r.get("program") == program)]


# Group keys a run may add (traffic distribution): rows that differ in them are never compared.
EXTRA_KEYS = ("flows", "queues")


def settings(rows, keys=SETTING_KEYS):
    """The rows grouped by ``keys`` (all but the one the finding varies) and :data:`EXTRA_KEYS`, in a stable order."""
    groups = collections.OrderedDict()
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in tuple(keys) + EXTRA_KEYS), []).append(row)
    return [groups[k] for k in sorted(groups, key=lambda key: [(v is None, str(v)) for v in key])]


def setting_label(row, keys=SETTING_KEYS):
    parts = []
    for key in keys:
        value = row.get(key)
        if key == "program":
            parts.append(str(value))
        elif key == "n" and value is not None:
            parts.append("N=%s" % value)
        elif key == "size" and value is not None:
            parts.append("%s B" % value)
        elif key == "rate":
            parts.append("offered %s" % fg._fmt_rate(value) if value else
                         "max rate" if value == 0 else "rate from the zero-loss search")
    parts += ["%s %s" % (row[key], key) for key in EXTRA_KEYS if row.get(key) is not None]
    return ", ".join(parts)


def usable(row, quantity):
    return row is not None and row.get("repetitions") and spread(row, quantity) is not None


def why_missing(rows, experiment, location, quantity, scope=None):
    """Why ``location`` gives no ``quantity`` in ``experiment`` (``scope``: the setting's rows)."""
    experiment_rows = rows_of(rows, experiment)
    if not experiment_rows:
        return "the `%s` experiment was not in this run's matrix" % experiment
    here = [r for r in (scope or experiment_rows) if r["location"] == location]
    anywhere = [r for r in experiment_rows if r["location"] == location]
    if not anywhere:
        return "location `%s` was not in this run's `%s` experiment" % (location, experiment)
    if not here and any(r.get("repetitions") for r in anywhere):
        return "`%s` at `%s`: not measured at %s" % (experiment, location, setting_label(scope[0]))
    here = here or anywhere
    problems = []
    for row in here:
        if row.get("repetitions"):
            continue
        text = "%s (%s)" % (row["status"], row.get("reason") or "no reason recorded")
        if text not in problems:
            problems.append(text)
    if problems:
        return "`%s` at `%s`: %s" % (experiment, location, "; ".join(problems))
    return "`%s` at `%s` recorded no %s" % (experiment, location, NAMES.get(quantity, quantity))


def offered_rate(row):
    """The rate a group was offered: its ``rate``, else the generator's achieved rate (``rate`` 0: as fast as
    possible, or None: a fraction of the zero-loss rate), else infinity."""
    return res._num(row.get("rate")) or res._num(row.get("rate_pps_median")) or float("inf")


def at_offered_rate(row, value):
    """True when the group processed (nearly) the whole rate the generator offered it."""
    offered = res._num(row.get("rate_pps_median")) or res._num(row.get("rate"))
    return bool(offered) and value.median >= OFFERED_SHARE * offered


# ---------------------------------------------------------------------------
# Comparisons shared by the findings
# ---------------------------------------------------------------------------

def compare_higher(label, high_row, low_row, quantity, high_name, low_name):
    """A step claiming ``high_row`` > ``low_row`` in ``quantity``."""
    unit = UNITS.get(quantity, "")
    high, low = spread(high_row, quantity), spread(low_row, quantity)
    text = "%s, %s: %s %s vs %s %s" % (label, NAMES.get(quantity, quantity), high_name, describe(high, unit),
                                       low_name, describe(low, unit))
    if unit == "pps" and at_offered_rate(high_row, high) and at_offered_rate(low_row, low):
        return step(UNDECIDED, text + ": both processed the whole offered rate, not compared", False)
    order, weak = above(high, low), tentative(high, low)
    if order is True:
        factor = sig(high.median / low.median) if low.median else "-"
        return step(HOLDS, text + ": %s higher, %s (x%s)" % (high_name, apart(weak), factor), weak)
    if order is False:
        return step(FAILS, text + ": %s lower, %s" % (high_name, apart(weak)), weak)
    return step(FAILS, text + ": %s, no difference shown" % ("equal" if weak else "IQRs overlap"), weak)


def offload_pairs(measured, chain, extra=()):
    """(less, more offloaded) pairs to compare: adjacent measured locations of ``chain``, then ``extra``."""
    present = [loc for loc in chain if loc in measured]
    return list(zip(present, present[1:])) + [p for p in extra if p[0] in measured and p[1] in measured]


def chain_steps(rows, experiment, chain, quantity, program=None, report_missing=True, extra=()):
    """One step per offloading pair (:func:`offload_pairs`) and setting; and what was left out."""
    steps, missing = [], []
    for group in settings(rows_of(rows, experiment, program)):
        by_location = dict((r["location"], r) for r in group)
        measured = set(loc for loc in by_location if usable(by_location[loc], quantity))
        if report_missing:
            for loc in chain:
                if loc not in measured:
                    missing.append(why_missing(rows, experiment, loc, quantity, group))
        label = "%s %s" % (experiment, setting_label(group[0]))
        for low, high in offload_pairs(measured, chain, extra):
            steps.append(compare_higher(label, by_location[high], by_location[low], quantity, high, low))
    if not steps and report_missing and not rows_of(rows, experiment, program):
        missing.append(why_missing(rows, experiment, chain[0], quantity))
    return steps, missing


PROGRAM_SETTING = ("program", "size", "rate")


def program_groups(rows, experiment, quantity):
    """``([(label, rows)] per program setting of ``experiment``, [why there is none])``."""
    found = rows_of(rows, experiment)
    if not found:
        return [], [why_missing(rows, experiment, None, quantity)]
    return [("%s %s" % (experiment, setting_label(group[0], PROGRAM_SETTING)), group)
            for group in settings(found, PROGRAM_SETTING)], []


def n_extremes(group, location, quantity):
    """The rows of ``location`` at the smallest and the largest N measured in ``group``; None with fewer than two."""
    here = [r for r in group if r["location"] == location and r.get("n") is not None]
    measured = sorted((r for r in here if usable(r, quantity)), key=lambda r: r["n"])
    return (measured[0], measured[-1]) if len(measured) >= 2 else None


def no_two_n(rows, group, location, quantity):
    """Why ``location`` has no smallest and largest N in ``group`` (a program setting of an experiment)."""
    experiment = group[0]["experiment"]
    if not any(r.get("repetitions") for r in group if r["location"] == location):
        return why_missing(rows, experiment, location, quantity, group)
    return "%s %s at `%s`: fewer than two N measured" % (experiment, setting_label(group[0], PROGRAM_SETTING),
                                                         location)


def with_zero_loss(judge):
    """``judge`` on complexity's throughput, then on zero_loss's zero-loss throughput where the run has it.

    What the optional zero_loss experiment lacks is not listed as left out.
    """
    def run(rows):
        steps, missing = judge(rows, "complexity", "processed_pps")
        if rows_of(rows, "zero_loss"):
            steps += judge(rows, "zero_loss", "zero_loss_pps")[0]
        return steps, missing
    return run


def verdict_of(steps):
    """(verdict, strength) of a finding whose every decided step must hold."""
    decided = [s for s in steps if s["outcome"] != UNDECIDED]
    if not decided:
        return NOT_MEASURABLE, None
    failing = [s for s in decided if s["outcome"] == FAILS]
    deciding = failing or decided
    return (NOT_REPRODUCED if failing else REPRODUCED,
            TENTATIVE if any(s["tentative"] for s in deciding) else FIRM)


def any_of(name, steps):
    """One step for a claim that holds when at least one of ``steps`` holds ("can", "may")."""
    decided = [s for s in steps if s["outcome"] != UNDECIDED]
    if not decided:
        return step(UNDECIDED, "%s: nothing to compare" % name, False)
    holding = [s for s in decided if s["outcome"] == HOLDS]
    if holding:
        return step(HOLDS, "%s: shown" % name, all(s["tentative"] for s in holding))
    return step(FAILS, "%s: not shown by any comparison" % name, any(s["tentative"] for s in decided))


# ---------------------------------------------------------------------------
# The findings
# ---------------------------------------------------------------------------

Finding = collections.namedtuple("Finding", "id slide statement test judge")


def _drop_gain(rows):
    steps, missing = chain_steps(rows, "drop", BAREMETAL_CHAIN, "processed_pps", extra=BAREMETAL_EXTRA)
    more, _unused = chain_steps(rows, "zero_loss", BAREMETAL_CHAIN, "zero_loss_pps", "drop", report_missing=False,
                                extra=BAREMETAL_EXTRA)
    return steps + more, missing


def _complexity_cost(rows, experiment, quantity):
    groups, missing = program_groups(rows, experiment, quantity)
    steps = []
    for label, group in groups:
        for location in fg._order([r["location"] for r in group], fg.LOCATION_ORDER):
            extremes = n_extremes(group, location, quantity)
            if extremes is None:
                missing.append(no_two_n(rows, group, location, quantity))
                continue
            small, large = extremes
            steps.append(compare_higher("%s at %s" % (label, location), small, large, quantity,
                                        "N=%s" % small["n"], "N=%s" % large["n"]))
    return steps, missing


def _ratio_step(label, first, second, first_name, second_name):
    """Claims ratio ``first`` > ratio ``second`` (both Spreads of a ratio)."""
    text = "%s: %s %s vs %s %s" % (label, first_name, _ratio_text(first), second_name, _ratio_text(second))
    order = above(first, second)
    weak = tentative(first, second)
    if order is True:
        return step(HOLDS, text + ": smaller at %s, %s" % (second_name, apart(weak, "ranges")), weak)
    if order is False:
        return step(FAILS, text + ": larger at %s, %s" % (second_name, apart(weak, "ranges")), weak)
    return step(FAILS, text + ": %s, no change shown" % ("equal" if weak else "ranges overlap"), weak)


def _ratio_text(value):
    if value.reps < 2:
        return "x%s (1 rep)" % sig(value.median)
    return "x%s (range %s-%s)" % (sig(value.median), sig(value.q1), sig(value.q3))


def _gain_shrinks(rows, experiment, quantity):
    """The gain of each offloading step at the smallest vs the largest N both locations measured."""
    groups, missing = program_groups(rows, experiment, quantity)
    steps = []
    for label, group in groups:
        measured = set(r["location"] for r in group if usable(r, quantity))
        missing += [why_missing(rows, experiment, loc, quantity, group)
                    for loc in BAREMETAL_CHAIN if loc not in measured]
        for low, high in offload_pairs(measured, BAREMETAL_CHAIN, BAREMETAL_EXTRA):
            gains = _gains(group, high, low, quantity)
            if len(gains) < 2:
                missing.append("%s, %s over %s: fewer than two N measured at both" % (label, high, low))
                continue
            (n_small, small), (n_large, large) = gains[0], gains[-1]
            steps.append(_ratio_step("%s, gain of %s over %s" % (label, high, low), small, large,
                                     "N=%s" % n_small, "N=%s" % n_large))
    return steps, missing


def _gains(group, high, low, quantity):
    """[(n, ratio high/low)] for each N where both locations have ``quantity``, by N."""
    out = []
    by_key = dict(((r["location"], r.get("n")), r) for r in group)
    for n in sorted(set(r["n"] for r in group if r.get("n") is not None)):
        a, b = by_key.get((high, n)), by_key.get((low, n))
        if usable(a, quantity) and usable(b, quantity):
            value = ratio(spread(a, quantity), spread(b, quantity))
            if value is not None:
                out.append((n, value))
    return out


def _nic_overloaded(rows, experiment, quantity):
    """The fall of throughput from the smallest to the largest N: steeper at the NIC than in the driver."""
    groups, missing = program_groups(rows, experiment, quantity)
    steps = []
    for label, group in groups:
        extremes = [(loc, n_extremes(group, loc, quantity)) for loc in ("offload", "driver")]
        gaps = [loc for loc, pair in extremes if pair is None]
        if gaps:
            missing += [no_two_n(rows, group, loc, quantity) for loc in gaps]
            continue
        ns = set((small["n"], large["n"]) for _loc, (small, large) in extremes)
        falls = dict((loc, ratio(spread(large, quantity), spread(small, quantity)))
                     for loc, (small, large) in extremes)
        if len(ns) > 1 or None in falls.values():
            missing.append("%s: the NIC and the driver were not measured at the same smallest and largest N"
                           % label)
            continue
        n_small, n_large = ns.pop()
        steps.append(_ratio_step("%s, throughput at N=%s / at N=%s" % (label, n_large, n_small),
                                 falls["driver"], falls["offload"], "driver", "offload"))
    return steps, missing


def _rate_influence(rows):
    steps, missing = [], []
    latency = rows_of(rows, "dns_latency")
    if not latency:
        return [], [why_missing(rows, "dns_latency", None, "rtt_us_p50")]
    for group in settings(latency, ("program", "n", "size", "location")):
        location = group[0]["location"]
        label = "dns_latency %s at %s" % (setting_label(group[0], ("program", "n", "size")), location)
        measured = sorted((r for r in group if usable(r, "rtt_us_p50")), key=offered_rate)
        if len(measured) < 2:
            missing.append(why_missing(rows, "dns_latency", location, "rtt_us_p50", group) if not measured
                           else "%s: a single rate measured" % label)
            continue
        low, high = measured[0], measured[-1]
        steps.append(_marked_change(label, low, high))
    return steps, missing


def _marked_change(label, low_row, high_row):
    low, high = spread(low_row, "rtt_us_p50"), spread(high_row, "rtt_us_p50")
    names = [setting_label(r, ("rate",)) for r in (low_row, high_row)]
    factor = high.median / low.median if low.median else float("inf")
    text = "%s: p50 RTT %s at %s vs %s at %s (x%s)" % (label, describe(high, "µs"), names[1],
                                                       describe(low, "µs"), names[0], sig(factor))
    weak = tentative(low, high)
    order = above(high, low)
    if order is None:
        return step(FAILS, text + ": %s, no change shown" % ("equal" if weak else "IQRs overlap"), weak)
    if max(factor, 1 / factor if factor else float("inf")) < MARKED_FACTOR:
        return step(FAILS, text + ": %s, but less than x%s" % (apart(weak), sig(MARKED_FACTOR)), weak)
    return step(HOLDS, text + ": %s, %s" % (apart(weak), "rises" if order else "falls"), weak)


def _before_driver(rows):
    steps, missing = [], []
    latency = rows_of(rows, "dns_latency")
    if not latency:
        return [], [why_missing(rows, "dns_latency", None, "rtt_us_p50")]
    for group in settings(latency):
        by_location = dict((r["location"], r) for r in group)
        gaps = [loc for loc in ("offload", "driver") if not usable(by_location.get(loc), "rtt_us_p50")]
        if gaps:
            missing += [why_missing(rows, "dns_latency", loc, "rtt_us_p50", group) for loc in gaps]
            continue
        nic, driver = spread(by_location["offload"], "rtt_us_p50"), spread(by_location["driver"], "rtt_us_p50")
        share = ratio(nic, driver)
        if share is None:
            missing.append("dns_latency %s: the driver's RTT quartile is 0" % setting_label(group[0]))
            continue
        text = "dns_latency %s: p50 RTT offload %s vs driver %s, offload/driver %s" % (
            setting_label(group[0]), describe(nic, "µs"), describe(driver, "µs"), _ratio_text(share))
        weak = tentative(nic, driver)
        if share.q1 > MOST:
            steps.append(step(HOLDS, text + ": above %s%s" % (sig(MOST), " (single values)" if weak else ""), weak))
        else:
            steps.append(step(FAILS, text + ": not %sabove %s" % ("" if weak else "wholly ", sig(MOST)), weak))
    return steps, missing


def _vm_layers(rows):
    steps, missing = chain_steps(rows, "vm_drop", VM_CHAIN, "processed_pps")
    more, _unused = chain_steps(rows, "zero_loss", VM_CHAIN, "zero_loss_pps", "drop", report_missing=False)
    return steps + more, missing


def _cpu_shift(rows):
    """Pairs of locations (less, more offloaded): both shares fall (reduce) / VM falls, host rises (shift)."""
    numbers, reduce_steps, shift_steps, missing = [], [], [], []
    shares = rows_of(rows, "vm_cpu_share")
    if not shares:
        return [], [], [why_missing(rows, "vm_cpu_share", None, "cpu_vm_share")]
    for group in settings(shares):
        by_location = dict((r["location"], r) for r in group)
        measured = [loc for loc in VM_CHAIN if usable(by_location.get(loc), "cpu_vm_share")
                    and usable(by_location.get(loc), "cpu_host_share")]
        missing += [why_missing(rows, "vm_cpu_share", loc, "cpu_vm_share", group)
                    for loc in VM_CHAIN if loc not in measured]
        for i, less in enumerate(measured):
            for more in measured[i + 1:]:
                reduce_step, shift_step = _cpu_pair(group[0], by_location[less], by_location[more])
                numbers.append(reduce_step["text"])
                reduce_steps.append(reduce_step)
                shift_steps.append(shift_step)
    if not reduce_steps:
        return numbers, [], missing
    parts = [any_of("reduce (both shares fall)", reduce_steps), any_of("shift (VM falls, host rises)", shift_steps)]
    return numbers + [s["text"] for s in parts], parts, missing


def _cpu_pair(first, less_row, more_row):
    """(reduce step, shift step) of one pair of locations, with the same text."""
    vm_less, vm_more = spread(less_row, "cpu_vm_share"), spread(more_row, "cpu_vm_share")
    host_less, host_more = spread(less_row, "cpu_host_share"), spread(more_row, "cpu_host_share")
    weak = tentative(vm_less, vm_more, host_less, host_more)
    vm_falls, host_rises = above(vm_less, vm_more), above(host_more, host_less)
    words = {True: "falls", False: "rises", None: "no change shown (IQRs overlap)"}
    text = "vm_cpu_share %s, %s -> %s: VM CPU %s -> %s, host CPU %s -> %s: VM %s, host %s" % (
        setting_label(first), less_row["location"], more_row["location"], describe(vm_less, "%"),
        describe(vm_more, "%"), describe(host_less, "%"), describe(host_more, "%"), words[vm_falls],
        words[None if host_rises is None else not host_rises])
    both_fall = vm_falls is True and host_rises is False
    shifted = vm_falls is True and host_rises is True
    return step(HOLDS if both_fall else FAILS, text, weak), step(HOLDS if shifted else FAILS, text, weak)


def _neighbour_delay(rows):
    numbers, deciding, missing = [], [], []
    neighbour = rows_of(rows, "neighbour")
    if not neighbour:
        return [], [], [why_missing(rows, "neighbour", "nic", "rtt_us_p50")]
    for group in settings(neighbour, ("size", "rate")):
        by_location = dict((r["location"], r) for r in group)
        label = "neighbour %s" % setting_label(group[0], ("size", "rate"))
        numbers += _neighbour_context(label, by_location)
        gaps = [loc for loc in ("nic", fg.BASELINE) if not usable(by_location.get(loc), "rtt_us_p50")]
        if gaps:
            missing += [why_missing(rows, "neighbour", loc, "rtt_us_p50", group) for loc in gaps]
            continue
        per_percentile = [compare_higher(label, by_location["nic"], by_location[fg.BASELINE], q, "nic", "baseline")
                          for q in ("rtt_us_p50", "rtt_us_p99") if usable(by_location["nic"], q)
                          and usable(by_location[fg.BASELINE], q)]
        either = any_of("%s: delay at p50 or p99" % label, per_percentile)
        numbers += [s["text"] for s in per_percentile + [either]]
        deciding.append(either)
    return numbers, deciding, missing


def _neighbour_context(label, by_location):
    """The neighbour's p50 RTT with the workload at the other locations against the baseline (not judged)."""
    baseline = by_location.get(fg.BASELINE)
    if not usable(baseline, "rtt_us_p50"):
        return []
    others = [loc for loc in fg._order(list(by_location), fg.LOCATION_ORDER) if loc not in ("nic", fg.BASELINE)
              and usable(by_location[loc], "rtt_us_p50")]
    return ["context, not judged: " + compare_higher(label, by_location[loc], baseline, "rtt_us_p50", loc,
                                                     "baseline")["text"] for loc in others]


def _every_step(judge):
    """A judge of (steps, missing) whose every step decides, as (numbers, deciding steps, missing)."""
    def run(rows):
        steps, missing = judge(rows)
        return [s["text"] for s in steps], steps, missing
    return run


SINGLE = (" With a single repetition on a side, single values are compared (no spread) and the verdict is "
          "tentative.")
FINDINGS = (
    Finding("offload_improves_drop", "Throughput baseline: drop all",
            "Offloading improves drop-all throughput: the closer to the wire the drop runs (AF_XDP in user space, "
            "XDP in the driver, the NIC), the more packets per second are processed.",
            "drop (and zero_loss drop, if run): each measured location against the next less offloaded one "
            "(afxdp < driver < offload; and generic < driver), per size and rate; throughput medians ordered "
            "with non-overlapping IQRs. Every step must hold." + SINGLE,
            _every_step(_drop_gain)),
    Finding("complexity_costs_throughput", "Processing complexity",
            "Performance depends on the processing complexity: the more iterations N a program runs per packet, "
            "the fewer packets per second a location processes.",
            "complexity (and zero_loss, if run): per program and location, throughput at the smallest N above "
            "that at the largest N, IQRs apart. Every location must show it." + SINGLE,
            _every_step(with_zero_loss(_complexity_cost))),
    Finding("gain_shrinks_with_task", "Processing complexity",
            "Offloading helps most when the task is smaller than the overhead it removes: the throughput gain "
            "of a location over the next less offloaded one shrinks as N grows.",
            "complexity (and zero_loss, if run): per program and offloading step (afxdp -> driver -> offload, "
            "generic -> driver), the "
            "throughput ratio more/less offloaded at the smallest N against the largest N measured at both; ratio "
            "ranges from the quartiles (q1/q3 .. q3/q1) must not overlap, the smaller N giving the larger gain. "
            "Every step must show it." + SINGLE,
            _every_step(with_zero_loss(_gain_shrinks))),
    Finding("nic_cpu_overloaded", "Processing complexity",
            "A slow NIC CPU is easily overloaded: as N grows, the NIC's throughput falls by a larger factor "
            "than the driver's.",
            "complexity (and zero_loss, if run): per program, throughput at the largest N / at the smallest N, "
            "for offload and for driver; the NIC's ratio range must lie wholly below the driver's." + SINGLE,
            _every_step(with_zero_loss(_nic_overloaded))),
    Finding("latency_depends_on_rate", "Reducing latency",
            "Latency is highly influenced by the packet rate: the DNS responder's median RTT at the highest "
            "offered rate differs from that at the lowest by at least a factor %s." % sig(MARKED_FACTOR),
            "dns_latency: per location, p50 RTT at the highest vs the lowest rate: IQRs apart and the medians a "
            "factor >= %s apart (either way). Every location must show it." % sig(MARKED_FACTOR) + SINGLE,
            _every_step(_rate_influence)),
    Finding("latency_before_driver", "Reducing latency",
            "Most latency is introduced before the device driver: answering on the NIC leaves more than half of "
            "the RTT of answering in the driver.",
            "dns_latency: per rate, p50 RTT offload / driver, ranged from the quartiles; the range must lie above "
            "%s." % sig(MOST) + SINGLE,
            _every_step(_before_driver)),
    Finding("vm_layers_more_potential", "Offloading from virtual machines",
            "Virtualization adds layers and so more offloading potential: each layer the drop moves out of the "
            "guest (AF_XDP in the VM, the VM's driver, the host's driver, the NIC) raises drop-all throughput.",
            "vm_drop (and zero_loss drop at VM locations, if run): each measured location against the next less "
            "offloaded one (vm_afxdp < vm_driver < host_driver < nic); throughput medians ordered with "
            "non-overlapping IQRs; pairs that both processed the whole offered rate are not compared. Every step "
            "must hold." + SINGLE,
            _every_step(_vm_layers)),
    Finding("cpu_reduced_or_shifted", "Influence on the VM host",
            "Offloading can reduce CPU usage in VM and host, but may shift it to the host: some offloading step "
            "lowers both the VM's and the host's CPU share, and some lowers the VM's while raising the host's.",
            "vm_cpu_share: every pair of measured locations, less -> more offloaded (vm_afxdp, vm_driver, "
            "host_driver, nic); a share changes when the IQRs are apart. Both parts (reduce, shift) must be "
            "shown by at least one pair." + SINGLE,
            _cpu_shift),
    Finding("nic_delays_neighbour", "Influence on neighbouring VMs",
            "The NIC can delay non-offloaded applications: a neighbour VM's DNS queries take longer while a "
            "checksum workload runs on the NIC than with no workload.",
            "neighbour: per rate, the neighbour's p50 and p99 RTT with the workload at `nic` against the "
            "`baseline` (no workload); reproduced when either is higher with non-overlapping IQRs." + SINGLE,
            _neighbour_delay),
)


_AT_LOCATION = re.compile(r"`(?P<experiment>[^`]+)` at `(?P<location>[^`]+)`: (?P<why>.*)")


def merge_locations(reasons):
    """Distinct ``reasons`` in order; "`e` at `a`: why" and "`e` at `b`: why" become "`e` at `a`, `b`: why"."""
    merged = collections.OrderedDict()
    for reason in reasons:
        match = _AT_LOCATION.fullmatch(reason)
        key = (match.group("experiment"), match.group("why")) if match else (None, reason)
        locations = merged.setdefault(key, [])
        if match and match.group("location") not in locations:
            locations.append(match.group("location"))
    return ["`%s` at %s: %s" % (experiment, ", ".join("`%s`" % loc for loc in locations), why) if experiment
            else why for (experiment, why), locations in merged.items()]


def judge(finding, rows):
    """The verdict of one :class:`Finding` on the summary rows of a run (see the module doc)."""
    numbers, deciding, missing = finding.judge(rows)
    verdict, strength = verdict_of(deciding)
    not_judged = merge_locations(missing)
    reason = None
    if verdict == NOT_MEASURABLE:
        undecided = [s["text"] for s in deciding if s["outcome"] == UNDECIDED]
        reason = "; ".join(not_judged + undecided) or "nothing in this run to compare"
    return {
        "id": finding.id,
        "slide": finding.slide,
        "statement": finding.statement,
        "verdict": verdict,
        "strength": strength,
        "reason": reason,
        "numbers": numbers,
        "not_judged": not_judged,
        "test": finding.test,
    }


def judge_all(rows):
    """One dict per finding of :data:`FINDINGS`, in the paper's order."""
    return [judge(finding, rows) for finding in FINDINGS]
