"""git-credential-pat: keeps Azure DevOps remotes signed in with scoped, rotated PATs."""

__version__ = "0.1.0"
