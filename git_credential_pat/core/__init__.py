"""The pure core: git's wire format, Azure DevOps remotes, the stored item and the decisions.

Nothing here runs git, touches a keyring, the network, a file or the clock; every function
takes what it needs as arguments, so each can be read and tested on its own.
"""
