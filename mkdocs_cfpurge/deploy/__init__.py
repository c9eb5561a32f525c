"""Deploy flows around the pipeline: git and the pushed branch, the origin wait, gh-deploy, mike."""
