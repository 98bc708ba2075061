"""The commands people run (`git credential-pat login`, `status`, ...), imported only when one
is asked for, never on git's get/store/erase."""
