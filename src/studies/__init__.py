"""Studies: a grid of the project's recipes (approaches x label budgets x seeds), each run through the same CLI, data
and model code as a single run, all scored on the same evaluation reviews of a named split, then reported with
intervals over seeds and reviews and paired differences between approaches.

- schema.py: the study file (typed; an unknown key is a one-line error)
- approach.py, kinds/: what an approach is; each kind (labels, unlabelled, demonstrations, calibrations) a file
- runner.py: the plan, resume, prerequisites, each run in its own process or in this one
- workers.py: runs spread by submitit over local workers (GPUs or CPU cores) or a SLURM job array
- run.py: one run: fit, then classify the evaluation reviews, with what reproduces it
- provenance.py: commit, versions, hashes of what a run read
- src/stats.py (shared with the benchmarks): intervals over seeds and reviews, paired bootstrap, McNemar's test
- report.py: the table, the paired differences, the plot, TensorBoard HPARAMS, the doc
- prompts.py: the prompt grid as a study, and the rule that chooses the recipe's prompt
- main.py: `python -m src study ...` and `python -m src prompts ...`

To run: python -m src study run --config configs/studies/label_budget.yaml
"""
