"""Pages and pictures people read: reviewer cards, model card, fairness audit.

Plotting uses matplotlib's Agg canvas and is imported inside the functions
here, never at package import; HTML comes from the Jinja2 templates in
``templates/`` with autoescaping on.
"""
