"""Development tools of the AlignGPT repository: not part of the ``aligngpt`` package.

Nothing under ``dev/`` is installed with the package (the wheel holds ``aligngpt*`` only). The
tools run from the repository root, as modules (``python -m dev.train_toy_model ...``) or, for the
scripts that import no other ``dev`` module, as files (``python dev/toy_image_use.py``), and
write only where their command lines say:

=============================  ===================================================================
``toy_recipe/``                the recipe that trains the bundled toy model (and its ablation)
``train_toy_model.py``         ``python -m dev.train_toy_model --work DIR --install-to DIR --results-dir DIR``
``toy_ablation.py``            the paper's ablations on the toy world (``--work DIR --out DIR``)
``refresh_toy_metrics.py``     re-derives a committed ``results/toy/metrics.json`` from a new evaluation
``toy_image_use.py``           does a toy model use its image? (yes/no with own vs another image)
``kill_resume_soak.py``        SIGKILL-and-resume soak of ``run`` and ``score-alignment``
``bench_viewer.py``            timings of the report viewer (``results/viewer/bench.txt``)
``viewer_screenshot.py``       the README's screenshot of ``aligngpt-eval view``
``cpu_attention_floor.py``     where the engine's CPU time goes (``results/bench/cpu_attention_floor.txt``)
``check_newest_deps.sh``       the suite on the newest dependency versions pyproject allows
``official_vectors/``          the drivers that recorded ``tests/data/official_vectors/``
=============================  ===================================================================
"""
