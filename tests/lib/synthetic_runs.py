"""Synthetic records of every experiment, for the figure and report tests.

The numbers are made up (deterministic, shaped like the paper's results) and
only ever written into temporary directories; nothing here is a measurement.
"""
import json
import os
import random

RUN_ID = "xl-synth"


def record(cell_id, **fields):
    base = {
        "schema": 1, "run_id": RUN_ID, "cell_id": cell_id, "experiment": "drop", "program": "drop",
        "n": None, "location": "driver", "mode": "driver", "loader": "object", "size": 64, "rate": 0,
        "repetition": 1, "duration_s": 5, "status": "ok", "reason": None,
        "started_at": "2019-06-24T10:00:00+00:00", "finished_at": "2019-06-24T10:00:07+00:00",
        "provenance": {"lab": "emulated", "hostname": "xl-lab", "kernel": "6.18.0",
                       "cpu_model": "Synthetic CPU @ 2.0GHz", "nic_driver": "veth", "nic_firmware": None,
                       "collection_version": "0.1.0", "program_hash": "abc"},
    }
    base.update(fields)
    return base


def _cell(experiment, program, n, location, size, rate, rep):
    parts = [experiment, program] + (["n%s" % n] if n is not None else []) + \
        [location, "s%s" % size, "r%s" % rate, "rep%s" % rep]
    return "-".join(str(p) for p in parts)


def _add(out, experiment, program, n, location, reps, size=64, rate=0, status="ok", reason=None,
         hypervisor=None, **values_per_rep):
    """One record per repetition; each keyword is a list (one value per repetition) or a scalar."""
    for rep in range(1, reps + 1):
        fields = {}
        for key, value in values_per_rep.items():
            fields[key] = value[rep - 1] if isinstance(value, list) else value
        rec = record(_cell(experiment, program, n, location, size, rate, rep), experiment=experiment,
                     program=program, n=n, location=location, mode=location, size=size, rate=rate,
                     repetition=rep, status=status, reason=reason, **(fields if status == "ok" else {}))
        if hypervisor:
            rec["provenance"] = dict(rec["provenance"], hypervisor=hypervisor)
        out.append(rec)


def cells(experiment, location, reps=3, program="drop", n=None, **fields):
    """The records of one cell group, one per repetition (keywords as for ``_add``: a list per repetition or a scalar)."""
    out = []
    _add(out, experiment, program, n, location, reps, **fields)
    return out


def synthetic_records():
    rng = random.Random(20190624)
    out = []
    no_nic = "xdp_program: no offload-capable NIC on xl-dut0 (veth)"
    # drop: throughput per location.
    _add(out, "drop", "drop", None, "offload", 3, status="unsupported", reason=no_nic)
    _add(out, "drop", "drop", None, "driver", 3, processed_pps=[11e6, 12e6, 13e6], rate_pps=14e6)
    _add(out, "drop", "drop", None, "generic", 3, processed_pps=[2.5e6, 2.7e6, 2.6e6], rate_pps=14e6)
    _add(out, "drop", "drop", None, "afxdp", 3, processed_pps=[4.0e6, 4.4e6, 4.2e6], rate_pps=14e6)
    # complexity: throughput and cost vs N.
    for program, per_iter in (("loop", 1.1), ("checksum", 2.3)):
        for n in (1, 10, 100, 1000):
            _add(out, "complexity", program, n, "offload", 3, status="unsupported", reason=no_nic)
            for location, base_ns in (("driver", 75.0), ("generic", 370.0)):
                ns = [base_ns + n * per_iter * f for f in (0.98, 1.0, 1.03)]
                reps = 3
                if program == "checksum" and n == 1000 and location == "generic":
                    _add(out, "complexity", program, n, location, 1, processed_pps=1e9 / ns[0],
                         ns_per_run=n * per_iter + 20)
                    rec = record(_cell("complexity", program, n, location, 64, 0, 2), experiment="complexity",
                                 program=program, n=n, location=location, repetition=2, status="failed",
                                 reason="traffic: generator exited with status 1")
                    out.append(rec)
                    continue
                _add(out, "complexity", program, n, location, reps, processed_pps=[1e9 / x for x in ns],
                     ns_per_run=[n * per_iter + 20 + d for d in (-1, 0, 1)])
    # dns_latency: percentiles vs rate.
    for location, base in (("driver", 2.5), ("generic", 6.0), ("afxdp", 30.0)):
        for rate in (10000, 50000, 100000, 500000):
            grow = 1 + rate / 1e5
            _add(out, "dns_latency", "dns_nxdomain", None, location, 3, rate=rate,
                 rtt_us_p50=[base * grow * f for f in (0.95, 1.0, 1.1)],
                 rtt_us_p90=[base * grow * 1.5 * f for f in (0.95, 1.0, 1.1)],
                 rtt_us_p99=[base * grow * 3 * f for f in (0.95, 1.0, 1.1)],
                 rtt_us_p999=[base * grow * 8 * f for f in (0.95, 1.0, 1.1)],
                 rtt_us_mean=base * grow * 1.2, loss=0.0 if rate < 500000 else 0.02, rate_pps=rate)
    _add(out, "dns_latency", "dns_nxdomain", None, "offload", 1, rate=10000, status="unsupported", reason=no_nic)
    qemu = "qemu-tcg 7.2 (libvirt 9.0)"
    # vm_drop.
    _add(out, "vm_drop", "drop", None, "vm_afxdp", 3, processed_pps=[0.30e6, 0.32e6, 0.31e6], hypervisor=qemu)
    _add(out, "vm_drop", "drop", None, "vm_driver", 3, processed_pps=[0.50e6, 0.52e6, 0.55e6], hypervisor=qemu)
    _add(out, "vm_drop", "drop", None, "host_driver", 3, processed_pps=[9.0e6, 9.5e6, 9.2e6], hypervisor=qemu)
    _add(out, "vm_drop", "drop", None, "nic", 3, status="unsupported", reason=no_nic, hypervisor=qemu)
    # vm_cpu_share: stacked host / VM.
    for location, host, vm in (("vm_afxdp", 95.0, 100.0), ("vm_driver", 90.0, 60.0), ("host_driver", 70.0, 0.5)):
        _add(out, "vm_cpu_share", "checksum", 100, location, 3, hypervisor=qemu,
             cpu_host_share=[host - 2, host, host + 3], cpu_vm_share=[vm, vm, vm], processed_pps=2e5)
    _add(out, "vm_cpu_share", "checksum", 100, "nic", 3, status="unsupported", reason=no_nic, hypervisor=qemu)
    # neighbour: samples for the workloads, a histogram for the baseline.
    for location, scale in (("vm_driver", 60.0), ("host_driver", 25.0)):
        samples = [[round(scale * (1 + rng.expovariate(1.0)), 3) for _i in range(400)] for _j in range(3)]
        _add(out, "neighbour", "checksum", 100, location, 3, rate=1000, hypervisor=qemu,
             rtt_us_samples=samples, rtt_us_p50=[sorted(s)[200] for s in samples],
             rtt_us_p99=[sorted(s)[396] for s in samples])
    _add(out, "neighbour", "checksum", 100, "nic", 3, rate=1000, status="unsupported", reason=no_nic,
         hypervisor=qemu)
    _add(out, "neighbour", "none", None, "baseline", 3, rate=1000, hypervisor=qemu,
         rtt_us_hist={"edges": [10, 15, 20, 30, 50, 100], "counts": [100, 200, 60, 30, 10]},
         rtt_us_p50=17.0, rtt_us_p99=60.0)
    return out


def write_run(results_dir, run_id=RUN_ID, records=None, skip=()):
    """Write ``records`` (default: the synthetic ones) under ``<results_dir>/<run_id>/records``."""
    path = os.path.join(results_dir, run_id, "records")
    os.makedirs(path, exist_ok=True)
    for rec in (synthetic_records() if records is None else records):
        if rec["experiment"] in skip:
            continue
        rec = dict(rec, run_id=run_id)
        with open(os.path.join(path, rec["cell_id"] + ".json"), "w", encoding="utf-8") as handle:
            json.dump(rec, handle)
    return os.path.dirname(path)
