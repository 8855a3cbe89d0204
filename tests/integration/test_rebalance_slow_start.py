"""HTTP/1.1 clients -> HTTP/1.1 backends: rebalancing toward a server in slow start.

The scale-out case of test_rebalance.py (90 clients, 45/45 on A and B, C comes up) with
`slow_start = "3s"`: while C's weight ramps, least_conn would send most shed clients
back to A and B (shedding at once ended at 34/33/23). wsgate waits for the ramp to end,
then sheds 15 + 15: the split reaches 27..33 each, with at most 33 sheds. The timeline
is printed.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import test_rebalance as tr  # noqa: E402

_config = tr.rebalance_config


def slow_start_config(gw_port: int, servers: list) -> str:
    text = _config(gw_port, servers)
    assert "eject_after_failures = 0\n" in text
    return text.replace("eject_after_failures = 0\n",
                        'eject_after_failures = 0\nslow_start = "3s"\n')


tr.rebalance_config = slow_start_config  # the inherited test builds its config with it


class RebalanceSlowStart(tr.Rebalance):
    # Only the scale-out case; the slow-close case runs in test_rebalance.py.
    test_h1_h1_rebalance_slow_close_handshake_is_not_shed_twice = None


if __name__ == "__main__":
    h.main()
