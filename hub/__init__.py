"""edxml-hub: the document exchange hub for Vietnamese state bodies.

Agencies exchange EDXML envelopes (QCVN 102:2016/BTTTT, Circular 10/2016/TT-BTTTT) under
Decision 28/2018/QĐ-TTg; the hub validates specialized-certificate signatures (Circular
41/2017/TT-BTTTT, Circular 08/2016/TT-BQP), routes envelopes over RabbitMQ, countersigns
receipts and records every step in a tamper-evident ledger.
"""

__version__ = "0.1.0"
