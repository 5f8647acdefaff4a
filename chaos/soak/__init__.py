"""`genchaos soak`: a long run under Locust load with a rotating fault timeline and kill -9 of the
service and of PostgreSQL, accounting for every accepted generation and watching every process's
resources for growth."""
