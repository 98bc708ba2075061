"""A local fake of Microsoft Entra ID and Azure DevOps for end-to-end tests; see `fake.py`."""

from tests.fakeazure.fake import FakeAzure
from tests.fakeazure.state import ADO_RESOURCE, MSA_ORG_TENANT, PatRecord, RequestRecord

__all__ = ["ADO_RESOURCE", "MSA_ORG_TENANT", "FakeAzure", "PatRecord", "RequestRecord"]
