"""The side effects, each behind a small interface: git, secret stores, locks, HTTP, sign-in,
tenant discovery, the PAT API and git's credential-cache. They import the core, never the
actions or the commands."""
