"""EDXML (QCVN 102:2016/BTTTT): model, hardened parsing, building, organization codes."""
