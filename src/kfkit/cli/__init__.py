"""kfkit's command line: kubectl-like verbs over one job model."""
