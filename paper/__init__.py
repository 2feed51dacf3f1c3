"""The paper: `python -m paper` regenerates results, figures, paper/generated/*.tex and paper/main.pdf.

`paper.generate` writes the LaTeX that comes from the checked sources (sympy closed forms, validation results,
figures); `paper.build` runs the whole pipeline.
"""
