"""The pure core: the replica's rules, its messages and the state machine's contract.

No I/O, no clock of its own and no randomness it was not given: it takes messages and the time
and returns what to send, store and apply (`Ready`), like etcd's raft package.
"""
