"""What the helper does with a request: answer git's get/store/erase, mint, rotate and revoke
PATs. Built from the core's decisions and the edges' side effects."""
