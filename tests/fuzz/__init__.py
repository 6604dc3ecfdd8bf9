"""The fuzzing suite (issue 16): signed envelopes, status packets and PDFs, mutated, judged in process.

``python -m tests.fuzz`` (or ``bench/fuzz``) starts from packets signed with the test PKI
(:mod:`tests.fuzz.corpus`), mutates them (:mod:`tests.fuzz.mutators`), runs each mutant through
:func:`hub.edxml.parse_packet` and :func:`hub.validators.validate_packet` in worker processes
with a time bound (:mod:`tests.fuzz.runner`), and judges every verdict with oracles that do not
trust the hub's own code (:mod:`tests.fuzz.oracles`): stock xmlsec1 for every accepted mutant,
pyHanko's reference path for every accepted PDF, the routed fields against the original's, and
the "only signed bytes travel" rules. It prints one JSON object of counts and writes each
crash, hang and disagreement to the output directory. ``tests/unit/test_fuzz_short.py`` runs a
few hundred inputs in the suite. Results of the long runs: ``docs/SECURITY.md``.
"""
