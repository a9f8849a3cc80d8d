"""Records of zero-loss cells made by a real search (module_utils/zero_loss.py) against a
simulated receiver of known capacity, for the summary and figure tests."""
from ansible_collections.xdplab.offload.plugins.module_utils import zero_loss as zl

PARAMS = {"resolution": 0.01, "max_trials": 30}
GENERATOR_MAX = 2e6


def search(capacity, params=None):
    """zero_loss.outcome of a whole search against a receiver of ``capacity`` pps (2 Mpps generator)."""
    params = params or PARAMS
    trials = []
    while True:
        rate = zl.next_rate(trials, params)
        if rate is None:
            return zl.outcome(trials, params)
        offered = GENERATOR_MAX if rate == 0 else float(rate)
        sent = int(offered * 2)
        trials.append({"target_pps": rate, "duration_s": 2.0, "sent": sent, "processed": int(min(sent, capacity * 2))})


def zero_loss_record(rep, capacity, status="ok", location="driver", program="drop", n=None,
                     experiment="zero_loss"):
    """A record as the experiment role writes it for a zero_loss cell (the search's fields)."""
    out = search(capacity)
    return {"schema": 1, "run_id": "xl-run", "experiment": experiment, "program": program, "n": n,
            "cell_id": "%s-%s%s-%s-rep%d" % (experiment, program, "" if n is None else "-n%d" % n, location, rep),
            "location": location, "mode": "driver", "size": 64, "rate": 0, "repetition": rep,
            "duration_s": 24, "status": status, "reason": None if status == "ok" else "the generator failed",
            "zero_loss_pps": out["zero_loss_pps"], "processed_pps": out["overload_processed_pps"],
            "zero_loss_low_pps": out["low_pps"], "zero_loss_high_pps": out["high_pps"],
            "zero_loss_converged": out["converged"], "zero_loss_reason": out["reason"],
            "zero_loss_parameters": out["parameters"], "zero_loss_trials": out["trials"]}
