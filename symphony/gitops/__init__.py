"""GitOps: keep clusters converged to sources (files, a watched folder, git), per experiment.

- :mod:`desired` — a snapshot → what to apply, where a bad document blocks only its own
  experiment (pure);
- :mod:`runner` — one source's reconcile pass: isolate, label, apply, prune what it owns;
- :mod:`ownership` — one source owns an experiment; another that declares it reports a
  conflict and leaves it alone;
- :mod:`loop` — when to run passes: polls, resyncs, webhooks, backoff (injectable clock);
- :mod:`store` — per-source status files under the state folder, read by ``ls`` and ``/status``;
- :mod:`config` and :mod:`http` — ``symphony serve``.
"""
