"""The fixed facts the helper is built on, in one place so that every module agrees."""

NAME = "git-credential-pat"
# The keyring service every item is filed under, as a person browsing the keyring sees it.
SERVICE = NAME
DAY = 86400

# Azure DevOps as an Entra resource: the PAT API and git accept its access tokens.
AZURE_DEVOPS_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"
AZURE_DEVOPS_SCOPES = (f"{AZURE_DEVOPS_RESOURCE}/.default",)
ORG_HOST = "dev.azure.com"
# The Visual Studio public client that Azure DevOps accepts for delegated sign-in; Git Credential
# Manager signs in to Azure Repos with it too, so organizations that allow one allow the other.
DEFAULT_CLIENT_ID = "872cd9fa-d31f-45e0-9eab-6e460a02d1f1"
DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
# The authority for Microsoft-account-backed organizations, which name no tenant of their own.
MSA_AUTHORITY_TENANT = "organizations"

# What a PAT gets unless git config says otherwise: git's pushes and reads, nothing more.
DEFAULT_SCOPE = "vso.code_write"
DEFAULT_LIFESPAN_DAYS = 30
# The lead time of Azure DevOps' own "your PAT expires soon" e-mail: rotate and warn within it.
DEFAULT_ROTATE_DAYS = 7
WARN_DAYS = 7

# git's credential-cache, put in front of the helper by `configure`: its entries outlive their
# last use by at most this long, far less than the days a PAT has left when it is answered.
CACHE_SECONDS = 900

# Items of the secret store that are not credentials.
TOKEN_CACHE_KEY = "msal-token-cache"
DEFAULT_STORE_TIMEOUT = 30.0  # seconds one call to the secret store may wait (patStoreTimeout)
FILE_STORE_HINT = "git config --global credential.patStore file"
