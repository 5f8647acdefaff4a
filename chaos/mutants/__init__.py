"""The mutation matrix: realistic defects planted one at a time in a copy of the service, to prove that
the `ci` chaos suite catches each of them (`python -m chaos.mutants`, `make mutants`)."""
