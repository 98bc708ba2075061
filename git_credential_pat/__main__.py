from git_credential_pat.cli import main

main()
