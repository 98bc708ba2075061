"""git-credential-pat: a git credential helper that keeps Azure DevOps remotes signed in with scoped PATs."""

__version__ = "0.1.0"
