"""The ``sadtalker`` backend: the official SadTalker networks, run from user-supplied checkpoints.

Torch is imported only inside this package (extra ``[sadtalker]``). ``audio`` is numpy-only;
``expnet``, ``posevae``, ``mapping``, ``facevid2vid`` and ``recon`` define the networks
(``fastconv``: the exact faster convolutions of the renderer's inference path);
``checkpoints`` reads the official files through one explicit key-name table; ``align`` (five
landmarks, the 224×224 alignment), ``coefficients`` (audio → 70/73 coefficients per frame, blinks)
and ``backend`` (:class:`~.backend.SadTalkerBackend`, photo + speech → frames) are the glue the
pipeline calls.
"""
