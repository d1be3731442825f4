"""Adapters that expose AlignGPT to other evaluation frameworks (optional extras).

``lmms_eval_plugin``: the ``aligngpt`` model for lmms-eval (``pip install aligngpt[lmms]``),
registered through lmms-eval's ``lmms_eval.models`` entry-point group. Nothing here is imported
by the rest of the package, so a missing framework never breaks ``import aligngpt``.
"""
